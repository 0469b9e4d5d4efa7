package ctmap

import (
	"encoding/json"
	"fmt"
	"time"
)

// Lifetimes of CT entries, Cilium's defaults. They are part of the CT maps'
// contract: every stage that creates or refreshes an entry (ct, and lb for
// CT_SERVICE entries) must agree on them.
type Lifetimes struct {
	TCP    Duration `json:"tcp"`     // established TCP
	SYN    Duration `json:"syn"`     // TCP before a non-SYN packet was seen
	Close  Duration `json:"close"`   // TCP after both FINs or an RST
	NonTCP Duration `json:"non_tcp"` // UDP, ICMP
}

// DefaultLifetimes are Cilium's.
func DefaultLifetimes() Lifetimes {
	return Lifetimes{
		TCP:    Duration(21600 * time.Second),
		SYN:    Duration(60 * time.Second),
		Close:  Duration(10 * time.Second),
		NonTCP: Duration(60 * time.Second),
	}
}

// Validate rejects lifetimes the datapath cannot hold (whole seconds in 32 bits).
func (l Lifetimes) Validate() error {
	for _, f := range []struct {
		name string
		d    Duration
	}{{"tcp", l.TCP}, {"syn", l.SYN}, {"close", l.Close}, {"non_tcp", l.NonTCP}} {
		if f.d.D() < time.Second || f.d.D() > 365*24*time.Hour {
			return fmt.Errorf("lifetime %s: %s is outside 1s..8760h", f.name, f.d.D())
		}
	}
	return nil
}

// Seconds are the lifetimes as the datapath's load-time constants.
func (l Lifetimes) Seconds() map[string]uint32 {
	return map[string]uint32{
		"ct_lifetime_tcp":    uint32(l.TCP.D().Seconds()),
		"ct_lifetime_syn":    uint32(l.SYN.D().Seconds()),
		"ct_lifetime_close":  uint32(l.Close.D().Seconds()),
		"ct_lifetime_nontcp": uint32(l.NonTCP.D().Seconds()),
	}
}

// AccountingVar is the datapath's load-time switch for per-entry packet
// and byte counters (ct_accounting in bpf/lib/ct.h), which every plugin that
// writes CT entries sets from its config.
const AccountingVar = "ct_accounting"

// AccountingValue is AccountingVar's value for on.
func AccountingValue(on bool) uint32 {
	if on {
		return 1
	}
	return 0
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
