package ct

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hotpath/hotpath/core/ctmap"
)

// Config is the ct plugin's block of the supervisor config. Durations are Go
// duration strings ("60s", "6h").
type Config struct {
	Lifetimes ctmap.Lifetimes `json:"lifetimes"`
	GC        GCConfig        `json:"gc"`
	// Accounting counts packets and bytes in every entry (on by
	// default). Off, as Cilium runs unless bpf-conntrack-accounting is set,
	// established flows stop writing their entries on every packet, which
	// saves the cross-CPU traffic of a flow whose directions are handled on
	// different CPUs; `hotpath ct list` then shows 0 packets and bytes.
	Accounting bool `json:"accounting"`
}

// GCConfig bounds Cilium's adaptive GC interval.
type GCConfig struct {
	Start  ctmap.Duration `json:"start"` // first interval
	Min    ctmap.Duration `json:"min"`
	Max    ctmap.Duration `json:"max"`
	Method string         `json:"method"` // sweep (in the kernel, default) or batch (userspace batch lookups)
}

// DefaultConfig is what the plugin runs with when nothing is configured.
func DefaultConfig() Config {
	return Config{
		Lifetimes:  ctmap.DefaultLifetimes(),
		Accounting: true,
		GC: GCConfig{
			Start:  ctmap.Duration(5 * time.Minute),
			Min:    ctmap.Duration(10 * time.Second),
			Max:    ctmap.Duration(12 * time.Hour),
			Method: "sweep",
		},
	}
}

// ParseConfig applies raw (may be empty) over the defaults and validates.
func ParseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	if len(raw) > 0 && string(raw) != "null" {
		// Strict, as the lb and supervisor configs: a misspelt key is an
		// error, not a silently kept default.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("parse ct config: %w", err)
		}
	}
	return cfg, cfg.Validate()
}

// Validate rejects lifetimes the datapath cannot hold and inverted GC bounds.
func (c Config) Validate() error {
	if err := c.Lifetimes.Validate(); err != nil {
		return fmt.Errorf("ct %w", err)
	}
	if c.GC.Min.D() <= 0 || c.GC.Max.D() < c.GC.Min.D() {
		return fmt.Errorf("ct gc: need 0 < min (%s) <= max (%s)", c.GC.Min.D(), c.GC.Max.D())
	}
	if c.GC.Method != "sweep" && c.GC.Method != "batch" {
		return fmt.Errorf("ct gc: method %q: want sweep or batch", c.GC.Method)
	}
	if c.GC.Start.D() < c.GC.Min.D() || c.GC.Start.D() > c.GC.Max.D() {
		return fmt.Errorf("ct gc: start %s is outside min..max", c.GC.Start.D())
	}
	return nil
}
