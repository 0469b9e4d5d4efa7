package plugin

import (
	"encoding/json"
	"fmt"
)

// CommandMigrate is the Invoke command by which the supervisor has a plugin
// convert the values of a shared map it owns during a schema migration
// (see Own). A plugin lists it in Description.Commands when the meaning of
// a field changes between its layouts, which field names cannot say. The
// build that knows both layouts converts: the new build on an upgrade to a
// higher layout, the old one on an upgrade to a lower layout.
const CommandMigrate = "hotpath.migrate"

// MigrateRequest carries a batch of entries of one map. New holds them
// already converted by field name into layout To (fields of both layouts
// copied, new fields zero); the plugin edits New in place, reading Old
// (the same entries in layout From) as it needs.
type MigrateRequest struct {
	Map     string `json:"map"`
	From    uint32 `json:"from"`
	To      uint32 `json:"to"`
	KeySize int    `json:"key_size"`
	OldSize int    `json:"old_value_size"`
	NewSize int    `json:"new_value_size"`
	Keys    []byte `json:"keys"` // KeySize bytes per entry
	Old     []byte `json:"old"`  // OldSize bytes per entry
	New     []byte `json:"new"`  // NewSize bytes per entry
	Count   int    `json:"count"`
}

// MigrateResult is the answer: New as the plugin left it.
type MigrateResult struct {
	New []byte `json:"new"`
}

// Check refuses a request whose sizes do not add up.
func (r *MigrateRequest) Check() error {
	if r.Count < 0 || len(r.Keys) != r.Count*r.KeySize || len(r.Old) != r.Count*r.OldSize || len(r.New) != r.Count*r.NewSize {
		return fmt.Errorf("migrate %s: %d entries do not match %d/%d/%d bytes of keys, old and new values", r.Map, r.Count, len(r.Keys), len(r.Old), len(r.New))
	}
	return nil
}

// HandleMigrate decodes the arguments of CommandMigrate, lets fn edit the
// new values and encodes the answer: what a plugin's Invoke returns for
// the command.
func HandleMigrate(args json.RawMessage, fn func(r *MigrateRequest) error) (json.RawMessage, error) {
	var r MigrateRequest
	if err := json.Unmarshal(args, &r); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	if err := fn(&r); err != nil {
		return nil, err
	}
	return json.Marshal(MigrateResult{New: r.New})
}
