package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
)

// SocketPath is the control socket under a state dir.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, "hotpath.sock") }

// Status is the answer of GET /v1/status and `hotpath status -o json`.
type Status struct {
	ActiveGeneration uint32          `json:"active_generation"`
	ABIVersion       uint32          `json:"abi_version"`
	BPFFS            string          `json:"bpffs"`
	StateDir         string          `json:"state_dir"`
	Devices          []string        `json:"devices"`
	StartedAt        time.Time       `json:"started_at"`
	Adopted          Adoption        `json:"adopted"`
	Plugins          []PluginStatus  `json:"plugins"`
	Maps             []MapStatus     `json:"maps"`
	Cluster          *cluster.Status `json:"cluster,omitempty"` // the etcd source, when enabled
}

// PluginStatus is one element of `hotpath plugin list -o json`.
type PluginStatus struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Pid        int      `json:"pid"`
	Restarts   int      `json:"restarts"`
	Healthy    bool     `json:"healthy"`
	Reason     string   `json:"reason,omitempty"`
	Generation uint32   `json:"generation"`
	GCLease    bool     `json:"gc_lease"`
	Path       string   `json:"path"`
	Slots      []string `json:"slots"`
	// What it claimed in Describe, given its config: hooks per slot, and
	// the plugin protocol version it speaks (major.minor).
	Hooks    map[string][]string `json:"hooks,omitempty"`
	Protocol string              `json:"protocol,omitempty"`
}

// MapStatus describes one shared map.
type MapStatus struct {
	Name       string `json:"name"`
	ID         uint32 `json:"id"`
	Type       string `json:"type"`
	MaxEntries uint32 `json:"max_entries"`
	Pin        string `json:"pin"`
	Layout     uint32 `json:"layout"` // value layout version (pin.Versioned maps have several)
}

// InvokeRequest is the body of POST /v1/plugins/{name}/invoke.
type InvokeRequest = plugin.InvokeRequest

// apiError is every error body.
type apiError struct {
	Error string `json:"error"`
}

// Serve answers the control API on <state-dir>/hotpath.sock (mode 0600)
// until ctx ends.
func (s *Supervisor) Serve(ctx context.Context) error {
	path := SocketPath(s.cfg.StateDir)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Status(), nil) })
	mux.HandleFunc("GET /v1/plugins", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Status().Plugins, nil) })
	mux.HandleFunc("POST /v1/plugins/{name}/invoke", s.handleInvoke)
	mux.HandleFunc("POST /v1/plugins/{name}/restart", s.handleRestart)
	mux.HandleFunc("POST /v1/plugins/{name}/upgrade", s.handleUpgrade)
	mux.HandleFunc("GET /v1/monitor", s.handleMonitor)
	mux.HandleFunc("POST /v1/maps/{name}/resize", s.handleResize)
	mux.HandleFunc("GET /v1/datapath", s.handleDatapath)
	s.mon.reset(s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(apiError{Error: err.Error()})
		return
	}
	if raw, ok := v.(json.RawMessage); ok {
		w.Write(raw)
		return
	}
	json.NewEncoder(w).Encode(v)
}

func (s *Supervisor) handleInvoke(w http.ResponseWriter, r *http.Request) {
	var req InvokeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		reply(w, nil, fmt.Errorf("decode invoke request: %w", err))
		return
	}
	res, err := s.Invoke(r.Context(), r.PathValue("name"), &req)
	reply(w, res, err)
}

// UpgradeAnswer is the body of an upgrade's answer: the result, and the
// error when it was refused or rolled back.
type UpgradeAnswer struct {
	Result *UpgradeResult `json:"result"`
	Error  string         `json:"error,omitempty"`
}

func (s *Supervisor) handleUpgrade(w http.ResponseWriter, r *http.Request) {
	var req UpgradeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		reply(w, nil, fmt.Errorf("decode upgrade request: %w", err))
		return
	}
	res, err := s.Upgrade(r.Context(), r.PathValue("name"), req)
	ans := UpgradeAnswer{Result: res}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		ans.Error = err.Error()
		w.WriteHeader(http.StatusConflict)
	}
	json.NewEncoder(w).Encode(ans)
}

// ResizeAnswer is the body of a resize's answer: the result (what was or
// would be done) and the error when it was refused or failed.
type ResizeAnswer struct {
	Result *ResizeResult `json:"result"`
	Error  string        `json:"error,omitempty"`
}

func (s *Supervisor) handleResize(w http.ResponseWriter, r *http.Request) {
	var req ResizeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		reply(w, nil, fmt.Errorf("decode resize request: %w", err))
		return
	}
	// A client that stops waiting does not cut a resize short.
	res, err := s.Resize(context.WithoutCancel(r.Context()), r.PathValue("name"), req)
	ans := ResizeAnswer{Result: res}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		ans.Error = err.Error()
		w.WriteHeader(http.StatusConflict)
	}
	json.NewEncoder(w).Encode(ans)
}

func (s *Supervisor) handleRestart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	m, ok := s.plugins[name]
	s.mu.Unlock()
	if !ok {
		reply(w, nil, fmt.Errorf("no plugin %q", name))
		return
	}
	// Ending the process hands the restart to the watcher, the same path a
	// crash takes.
	s.mu.Lock()
	old := m.inst
	s.mu.Unlock()
	old.Kill()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		fresh := m.inst != old && m.healthy
		s.mu.Unlock()
		if fresh {
			reply(w, s.Status().Plugins, nil)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	reply(w, nil, fmt.Errorf("plugin %s did not come back within 15s", name))
}

// Invoke routes a plugin-specific command to plugin name.
func (s *Supervisor) Invoke(ctx context.Context, name string, req *InvokeRequest) (json.RawMessage, error) {
	s.mu.Lock()
	m, ok := s.plugins[name]
	var dp plugin.Datapath
	if ok && m.inst != nil {
		dp = m.inst.Datapath
	}
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no plugin %q", name)
	}
	if dp == nil {
		return nil, fmt.Errorf("plugin %s is restarting", name)
	}
	rctx, cancel := rpcContext(ctx, invokeTimeout)
	defer cancel()
	res, err := dp.Invoke(rctx, req)
	if err != nil {
		return nil, fmt.Errorf("plugin %s %s: %w", name, req.Command, err)
	}
	return res, nil
}

// Status reports the supervisor, its plugins and maps.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		ActiveGeneration: s.gens.Active(), ABIVersion: abi.Version, BPFFS: s.cfg.BPFFS, StateDir: s.cfg.StateDir,
		Devices: s.cfg.Devices, StartedAt: s.started, Adopted: s.adoption, Plugins: []PluginStatus{},
	}
	for name, m := range s.plugins {
		ps := PluginStatus{Name: name, Restarts: m.restarts, Healthy: m.healthy, Reason: m.reason, GCLease: m.lease, Path: m.cfg.Path}
		if m.inst != nil {
			ps.Version, ps.Pid, ps.Slots = m.inst.Desc.Version, m.inst.Pid, m.inst.Desc.Slots
			ps.Hooks, ps.Protocol = m.inst.Desc.Hooks, plugin.VersionString(plugin.ProtocolVersion, m.inst.Desc.ProtocolMinor)
		}
		ps.Generation = s.gens.of(name)
		st.Plugins = append(st.Plugins, ps)
	}
	sort.Slice(st.Plugins, func(i, j int) bool { return st.Plugins[i].Name < st.Plugins[j].Name })
	for name, m := range s.maps.ByName {
		info, err := m.Info()
		if err != nil {
			continue
		}
		st.Maps = append(st.Maps, MapStatus{Name: name, ID: uint32(s.maps.IDs[name]), Type: info.Type.String(), MaxEntries: info.MaxEntries, Pin: s.layout.Shared(name), Layout: pin.LayoutOf(name, m)})
	}
	sort.Slice(st.Maps, func(i, j int) bool { return st.Maps[i].Name < st.Maps[j].Name })
	if s.sync != nil {
		cs := s.sync.Status()
		st.Cluster = &cs
	}
	return st
}
