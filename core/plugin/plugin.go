// Package plugin is the contract between the supervisor and a datapath
// plugin: the interface every plugin implements, the go-plugin shim that
// carries it over gRPC, and Serve for a plugin's main.
package plugin

import (
	"context"
	"encoding/json"
)

// ProtocolVersion is go-plugin's protocol version for hotpath plugins. It
// changes when the gRPC methods change; the pipeline ABI has its own version
// (abi.Version), checked after the handshake.
const ProtocolVersion = 1

// Name is the key of the datapath plugin in go-plugin's plugin set.
const Name = "datapath"

// MapSchema is what a plugin expects of a shared map. The supervisor refuses a
// plugin whose expectation differs from the pinned map.
type MapSchema struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	KeySize    uint32 `json:"key_size"`
	ValueSize  uint32 `json:"value_size"`
	MaxEntries uint32 `json:"max_entries,omitempty"` // 0: any size
}

// Description is a plugin's answer to Describe.
type Description struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	ABIVersion uint32   `json:"abi_version"`
	Slots      []string `json:"slots"` // pipeline slots it claims (abi.SlotName)
	// Hooks lists, per slot, the TCX hooks ("ingress", "egress") at which
	// the slot's program has work; a slot not listed runs at both. Packets
	// at other hooks skip the slot without a tail call.
	Hooks       map[string][]string `json:"hooks,omitempty"`
	Maps        []MapSchema         `json:"maps"`         // shared maps it uses
	PrivateMaps []string            `json:"private_maps"` // maps it pins under plugins/<name>/
	GC          bool                `json:"gc"`           // needs the GC lease
	Commands    []string            `json:"commands"`     // Invoke commands it understands
}

// LoadRequest asks a plugin to load its stage programs for one generation.
type LoadRequest struct {
	Generation uint32          `json:"generation"`
	BPFFS      string          `json:"bpffs"`  // pin root; shared maps under maps/
	Config     json.RawMessage `json:"config"` // the plugin's block of the supervisor config
}

// LoadResponse names the pinned program for each claimed slot.
type LoadResponse struct {
	Programs map[string]string `json:"programs"` // slot name -> pin path
}

// ActivateRequest starts a plugin's background work. GCLease is granted to
// exactly one instance of a plugin at a time.
type ActivateRequest struct {
	Generation uint32          `json:"generation"`
	BPFFS      string          `json:"bpffs"`
	StateDir   string          `json:"state_dir"`
	Config     json.RawMessage `json:"config"`
	GCLease    bool            `json:"gc_lease"`
}

// Health is a plugin's self-assessment.
type Health struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}

// InvokeRequest carries a plugin-specific command, e.g. "service-add".
type InvokeRequest struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args"`
}

// Datapath is implemented by every hotpath plugin.
type Datapath interface {
	Describe(ctx context.Context) (*Description, error)
	Load(ctx context.Context, req *LoadRequest) (*LoadResponse, error)
	Activate(ctx context.Context, req *ActivateRequest) error
	Deactivate(ctx context.Context) error
	Health(ctx context.Context) (*Health, error)
	Invoke(ctx context.Context, req *InvokeRequest) (json.RawMessage, error)
}

// Metric is one value a plugin reports through Invoke("metrics"); the
// supervisor exports it as hotpath_<plugin>_<name>, so every plugin gets
// Prometheus metrics through one mechanism.
type Metric struct {
	Name   string            `json:"name"`
	Help   string            `json:"help"`
	Type   string            `json:"type"` // counter or gauge
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}
