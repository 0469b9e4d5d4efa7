package ct

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Config is the ct plugin's block of the supervisor config. Durations are Go
// duration strings ("60s", "6h").
type Config struct {
	Lifetimes Lifetimes `json:"lifetimes"`
	GC        GCConfig  `json:"gc"`
}

// Lifetimes of CT entries, Cilium's defaults.
type Lifetimes struct {
	TCP    Duration `json:"tcp"`     // established TCP
	SYN    Duration `json:"syn"`     // TCP before a non-SYN packet was seen
	Close  Duration `json:"close"`   // TCP after both FINs or an RST
	NonTCP Duration `json:"non_tcp"` // UDP, ICMP
}

// GCConfig bounds Cilium's adaptive GC interval.
type GCConfig struct {
	Start  Duration `json:"start"` // first interval
	Min    Duration `json:"min"`
	Max    Duration `json:"max"`
	Method string   `json:"method"` // sweep (in the kernel, default) or batch (userspace batch lookups)
}

// DefaultConfig is what the plugin runs with when nothing is configured.
func DefaultConfig() Config {
	return Config{
		Lifetimes: Lifetimes{
			TCP:    Duration(21600 * time.Second),
			SYN:    Duration(60 * time.Second),
			Close:  Duration(10 * time.Second),
			NonTCP: Duration(60 * time.Second),
		},
		GC: GCConfig{
			Start:  Duration(5 * time.Minute),
			Min:    Duration(10 * time.Second),
			Max:    Duration(12 * time.Hour),
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
	for name, d := range map[string]Duration{
		"tcp": c.Lifetimes.TCP, "syn": c.Lifetimes.SYN, "close": c.Lifetimes.Close, "non_tcp": c.Lifetimes.NonTCP,
	} {
		if d.D() < time.Second || d.D() > 365*24*time.Hour {
			return fmt.Errorf("ct lifetime %s: %s is outside 1s..8760h", name, d.D())
		}
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

// Duration is a time.Duration that reads and writes as "10s".
type Duration time.Duration

// D converts to time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "10s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration %s: want a string like \"10s\" or seconds", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}
