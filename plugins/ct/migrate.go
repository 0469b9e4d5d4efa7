package ct

import (
	"fmt"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/plugin"
)

// migrate is the ct plugin's part of a migration of the CT maps between
// value layouts (plugin.CommandMigrate): field names carry every field the
// layouts share; into layout 2, last_seen starts at the latest time the
// entry recorded (ctmap.Fixup) rather than at 0, which would read "never".
func migrate(r *plugin.MigrateRequest) error {
	fix := ctmap.Fixup(r.From, r.To)
	if fix == nil {
		return nil
	}
	if r.NewSize <= 0 {
		return fmt.Errorf("migrate %s: new values of %d bytes", r.Map, r.NewSize)
	}
	for i := 0; i < r.Count; i++ {
		fix(r.New[i*r.NewSize : (i+1)*r.NewSize])
	}
	return nil
}
