package lb

import (
	"encoding/json"
	"testing"

	"github.com/hotpath/hotpath/core/services"
)

func TestDecodeArgsStrict(t *testing.T) {
	var a services.ServiceArgs
	for _, raw := range []string{"", "null", `{"vip":"10.96.0.10:80/tcp","extra":1}`, `{"vip":5}`, `[`} {
		if err := decodeArgs(json.RawMessage(raw), &a); err == nil {
			t.Errorf("decodeArgs(%q) accepted", raw)
		}
	}
}

func TestConfig(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if err != nil || cfg.MaglevTableSize != 16381 || cfg.algorithm() != services.Random || cfg.Lifetimes.TCP.D().Hours() != 6 {
		t.Fatalf("defaults %+v %v", cfg, err)
	}
	cfg, err = ParseConfig(json.RawMessage(`{"maglev_seed":42,"algorithm":"maglev","lifetimes":{"syn":"30s"}}`))
	if err != nil || cfg.MaglevSeed != 42 || cfg.algorithm() != services.Maglev || cfg.Lifetimes.SYN.D().Seconds() != 30 || cfg.Lifetimes.TCP.D().Hours() != 6 {
		t.Fatalf("override %+v %v", cfg, err)
	}
	for _, raw := range []string{`{"maglev_table_size":100}`, `{"algorithm":"wrr"}`, `{"lifetimes":{"tcp":"0s"}}`, `{"seed":1}`} {
		if _, err := ParseConfig(json.RawMessage(raw)); err == nil {
			t.Errorf("config %s accepted", raw)
		}
	}
}
