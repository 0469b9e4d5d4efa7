package leastconn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Config is the plugin's block of the supervisor config, e.g.
//
//	"leastconn": {"refresh": "1s", "maglev_seed": 0}
type Config struct {
	// Refresh is how often the counts are rebuilt from the CT maps.
	Refresh string `json:"refresh"`
	// MaglevSeed must equal the lb plugin's maglev_seed: Maglev services
	// are handed to lb's own selection, which hashes packets with it.
	MaglevSeed uint32 `json:"maglev_seed"`
}

// DefaultConfig refreshes every second with lb's default seed.
func DefaultConfig() Config { return Config{Refresh: "1s"} }

// ParseConfig applies raw (may be empty) over the defaults and validates.
func ParseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("parse leastconn config: %w", err)
		}
	}
	if _, err := cfg.Interval(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Interval is Refresh as a duration, between 100ms and 1h.
func (c Config) Interval() (time.Duration, error) {
	d, err := time.ParseDuration(c.Refresh)
	if err != nil {
		return 0, fmt.Errorf("leastconn config: refresh %q: %w", c.Refresh, err)
	}
	if d < 100*time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("leastconn config: refresh %s is outside 100ms..1h", d)
	}
	return d, nil
}
