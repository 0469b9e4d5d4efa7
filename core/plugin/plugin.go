// Package plugin is the contract between the supervisor and a datapath
// plugin: the Datapath interface every plugin implements, the gRPC client
// and server that carry it (generated from proto/datapath.proto), the
// go-plugin shim, and Serve for a plugin's main.
//
// A plugin in Go implements Datapath and calls Serve from main:
//
//	func main() { plugin.Serve(myplugin.New(plugin.Logger())) }
//
// A plugin in another language serves the Datapath service of
// proto/datapath.proto behind go-plugin's handshake (see Handshake).
package plugin

import (
	"context"
	"encoding/json"

	dto "github.com/prometheus/client_model/go"
)

// ProtocolVersion is the major version of the plugin protocol, go-plugin's
// handshake ProtocolVersion: a plugin of another major version is refused
// at the handshake, before any call. It changes only with an incompatible
// change of proto/datapath.proto.
const ProtocolVersion = 2

// ProtocolMinor is the minor version of the protocol this package speaks.
// Each minor version only adds fields or methods to the major version (see
// the history at the top of proto/datapath.proto), so a supervisor loads a
// plugin one minor version older by treating what came later as absent.
// Serve reports it in Description.ProtocolMinor.
const ProtocolMinor = 2

// MinorCgroup is the first minor version with LoadResponse.Cgroup. An older
// plugin never sends it, which is the same as having no cgroup programs.
const MinorCgroup = 2

// MinorMetrics is the first minor version with the Metrics call.
const MinorMetrics = 1

// MinorMapVersions is the first minor version whose plugins declare the
// layout version of the shared maps they write (MapSchema.Version) and
// load against any layout of the maps they only read.
const MinorMapVersions = 2

// Name is the key of the datapath plugin in go-plugin's plugin set.
const Name = "datapath"

// MapSchema is what a plugin expects of a shared map. The supervisor refuses a
// plugin whose expectation differs from the pinned map.
type MapSchema struct {
	Name       string `json:"name"`
	Type       string `json:"type"` // cilium/ebpf's ebpf.MapType.String()
	KeySize    uint32 `json:"key_size"`
	ValueSize  uint32 `json:"value_size"`
	MaxEntries uint32 `json:"max_entries,omitempty"` // 0: any size
	// Version is the layout version of the map's value the plugin's
	// programs write (see Own); 0: none declared, the plugin reads the map
	// at whatever layout it is pinned with (since MinorMapVersions).
	Version uint32 `json:"version,omitempty"`
}

// DescribeRequest carries the plugin's configuration, so what a plugin
// claims (slots, hooks) can depend on it and shows in the supervisor's
// config and state rather than in an environment.
type DescribeRequest struct {
	Config json.RawMessage `json:"config"` // the plugin's block of the supervisor config; may be empty
}

// Description is a plugin's answer to Describe.
type Description struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	ABIVersion uint32 `json:"abi_version"` // must equal the supervisor's abi.Version
	// ProtocolMinor is the plugin's minor protocol version. Serve fills it
	// in; an implementation leaves it zero.
	ProtocolMinor uint32   `json:"protocol_minor"`
	Slots         []string `json:"slots"` // pipeline slots it claims (abi.SlotName)
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

// LoadResponse names the pinned program for each claimed slot, and the
// cgroup programs the supervisor attaches for the plugin (see Cgroup*).
type LoadResponse struct {
	Programs map[string]string `json:"programs"`         // slot name -> pin path
	Cgroup   map[string]string `json:"cgroup,omitempty"` // cgroup attach point -> pin path (since 2.2)
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

// InvokeRequest carries a plugin-specific command, e.g. "service-add". Args
// and the result are opaque bytes to the protocol; hotpath's plugins, its
// control API and its CLI use JSON.
type InvokeRequest struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args"`
}

// Datapath is implemented by every hotpath plugin. The supervisor calls it
// in this order: Describe, Load (once per pipeline generation), Activate,
// then Health, Metrics and Invoke at any time, Deactivate before the GC
// lease moves to another instance. Every call has a deadline in ctx.
type Datapath interface {
	// Describe says what the plugin needs and claims under the given
	// config. It must not change anything: the supervisor may refuse the
	// plugin after it.
	Describe(ctx context.Context, req *DescribeRequest) (*Description, error)
	// Load loads and pins the stage programs of one generation.
	Load(ctx context.Context, req *LoadRequest) (*LoadResponse, error)
	// Activate starts background work; with GCLease false it stops GC.
	Activate(ctx context.Context, req *ActivateRequest) error
	// Deactivate returns once no background work of this instance runs.
	Deactivate(ctx context.Context) error
	Health(ctx context.Context) (*Health, error)
	// Metrics returns the plugin's Prometheus metric families, named
	// without prefix: the supervisor exports gc_runs_total of plugin ct as
	// hotpath_ct_gc_runs_total. Embed a Registry to answer it from
	// client_golang collectors.
	Metrics(ctx context.Context) ([]*dto.MetricFamily, error)
	// Invoke runs a plugin-specific command.
	Invoke(ctx context.Context, req *InvokeRequest) (json.RawMessage, error)
}
