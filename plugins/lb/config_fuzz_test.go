package lb

import (
	"encoding/json"
	"testing"

	"github.com/hotpath/hotpath/core/plugintest"
)

// The lb config as the supervisor hands it over: rejected input gets a
// clear error, accepted input reads back the same after being written out.
func FuzzLBConfig(f *testing.F) {
	for _, s := range []string{`{"maglev_seed":42,"maglev_table_size":251,"algorithm":"maglev"}`, `{"algorithm":"RANDOM","lifetimes":{"syn":"30s"}}`,
		`{"maglev_table_size":252}`, `{"algorithm":"roundrobin"}`, `{"maglev_sed":1}`, `{"lifetimes":{"tcp":-1}}`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseConfig(raw)
		if err != nil {
			plugintest.ClearError(t, err)
			return
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(out)
		if err != nil || again != cfg {
			t.Fatalf("lb config %s read as %s, read back as %+v (%v)", raw, out, again, err)
		}
	})
}
