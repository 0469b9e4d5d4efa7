package ct

import (
	"encoding/json"
	"testing"

	"github.com/hotpath/hotpath/core/plugintest"
)

// The ct config as the supervisor hands it over: rejected input gets a
// clear error, accepted input reads back the same after being written out.
func FuzzCTConfig(f *testing.F) {
	for _, s := range []string{`{"lifetimes":{"close":"2s"},"gc":{"start":30}}`, `{"gc":{"method":"batch","min":"1s","max":"1m","start":"10s"}}`,
		`{"lifetimes":{"tcp":"0s"}}`, `{"gc":{"min":"1m","max":"10s"}}`, `{"lifetimes":{"close":"soon"}}`, `{"lifetimes":7}`,
		`{"gc":{"max":1e300}}`, `{"lifetimes":{"tpc":"1s"}}`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseConfig(raw)
		if err != nil {
			plugintest.ClearError(t, err, "ct")
			return
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(out)
		if err != nil || again != cfg {
			t.Fatalf("ct config %s read as %s, read back as %+v (%v)", raw, out, again, err)
		}
	})
}
