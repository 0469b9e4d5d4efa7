package lb

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// Config is the lb plugin's block of the supervisor config.
type Config struct {
	// Lifetimes of CT_SERVICE entries; the same block and defaults
	// (Cilium's) as the ct plugin's.
	Lifetimes ctmap.Lifetimes `json:"lifetimes"`
	// MaglevSeed seeds both the Maglev tables and the packet hash. Every
	// node of a cluster must use the same seed to build the same tables.
	MaglevSeed uint32 `json:"maglev_seed"`
	// MaglevTableSize is M for services that do not name one.
	MaglevTableSize uint32 `json:"maglev_table_size"`
	// Algorithm is used by services that do not name one.
	Algorithm string `json:"algorithm"`
}

// DefaultConfig is what the plugin runs with when nothing is configured.
func DefaultConfig() Config {
	return Config{
		Lifetimes:       ctmap.DefaultLifetimes(),
		MaglevTableSize: maglev.DefaultM,
		Algorithm:       services.Random.String(),
	}
}

// ParseConfig applies raw (may be empty) over the defaults and validates.
func ParseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("parse lb config: %w", err)
		}
	}
	return cfg, cfg.Validate()
}

// Validate rejects lifetimes the datapath cannot hold, unknown algorithms
// and table sizes Maglev does not support.
func (c Config) Validate() error {
	if err := c.Lifetimes.Validate(); err != nil {
		return fmt.Errorf("lb %w", err)
	}
	if err := maglev.ValidSize(c.MaglevTableSize); err != nil {
		return fmt.Errorf("lb config: %w", err)
	}
	if _, err := services.ParseAlgorithm(c.Algorithm); err != nil {
		return fmt.Errorf("lb config: %w", err)
	}
	return nil
}

func (c Config) algorithm() services.Algorithm {
	a, _ := services.ParseAlgorithm(c.Algorithm)
	return a
}
