package lb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// Config is the lb plugin's block of the supervisor config.
type Config struct {
	// Lifetimes of CT_SERVICE entries; the same block and defaults
	// (Cilium's) as the ct plugin's.
	Lifetimes ctmap.Lifetimes `json:"lifetimes"`
	// Accounting counts packets and bytes in CT_SERVICE entries, as the
	// ct plugin's switch of the same name does in its own (on by default).
	Accounting bool `json:"accounting"`
	// MaglevSeed seeds both the Maglev tables and the packet hash. Every
	// node of a cluster must use the same seed to build the same tables.
	MaglevSeed uint32 `json:"maglev_seed"`
	// MaglevTableSize is M for services that do not name one.
	MaglevTableSize uint32 `json:"maglev_table_size"`
	// Algorithm is used by services that do not name one.
	Algorithm string `json:"algorithm"`
	// Select is who supplies backend selection in the lb-select slot:
	// "builtin" (this plugin, the default) or "external" (another plugin
	// claims the slot, e.g. a vendor's algorithm).
	Select string `json:"select,omitempty"`
	// SocketLB translates connections to a VIP at the socket (cgroup
	// connect4/sendmsg4/recvmsg4/getpeername4) for processes in the
	// supervisor's cgroup, as Cilium's socket LB does; the per-packet stages
	// stay for every other client. Off by default. See README.md.
	SocketLB bool `json:"socket_lb,omitempty"`
	// SplitStages runs lb-select and lb-dnat as stages of their own for
	// new flows even with the built-in selection. By default the lb stage
	// chooses and translates a new flow itself (two tail calls fewer), as
	// it does an established one; split, each stage can be traced and timed
	// apart (the bench's per-stage rows). With select "external" the
	// stages always run apart.
	SplitStages bool `json:"split_stages,omitempty"`
}

// Values of Config.Select.
const (
	SelectBuiltin  = "builtin"
	SelectExternal = "external"
)

// DefaultConfig is what the plugin runs with when nothing is configured.
func DefaultConfig() Config {
	return Config{
		Lifetimes:       ctmap.DefaultLifetimes(),
		Accounting:      true,
		MaglevTableSize: maglev.DefaultM,
		Algorithm:       services.Random.String(),
		Select:          SelectBuiltin,
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
	if c.Select != SelectBuiltin && c.Select != SelectExternal {
		return fmt.Errorf("lb config: select %q: want %q or %q", c.Select, SelectBuiltin, SelectExternal)
	}
	return nil
}

// inlineSelect tells whether the lb stage chooses and translates new flows
// itself: only where lb supplies the selection and holds lb-dnat.
func (c Config) inlineSelect(slots []string) bool {
	return c.Select == SelectBuiltin && !c.SplitStages && slices.Contains(slots, SlotSelect) && slices.Contains(slots, SlotDNAT)
}

// Slots are the slots a plugin with this config claims: all four, or three
// when another plugin supplies selection.
func (c Config) Slots() []string {
	if c.Select == SelectExternal {
		return []string{SlotLB, SlotDNAT, SlotRevNat}
	}
	return AllSlots
}

// Hooks are where each claimed slot has work: services are translated where
// a client's packets enter the node, replies are reverse-translated where
// they enter it (the pipeline runs once per node, at the hook a packet
// enters by) and, for a backend that is the node itself, where they leave
// it. Packets at the other hook skip the lb slots without a tail call.
func (c Config) Hooks() map[string][]string {
	h := map[string][]string{}
	for _, s := range c.Slots() {
		h[s] = []string{"ingress"}
	}
	h[SlotRevNat] = []string{"ingress", "egress"}
	return h
}

// sockActive tells whether socket LB runs. With select "external" it does
// not: the vendor's lb-select decides for every service it sees (it may hand
// some back to the built-in selection, but a cgroup hook cannot ask it), so
// every service stays on the per-packet path.
func (c Config) sockActive() bool {
	return c.SocketLB && c.Select == SelectBuiltin
}

func (c Config) algorithm() services.Algorithm {
	a, _ := services.ParseAlgorithm(c.Algorithm)
	return a
}
