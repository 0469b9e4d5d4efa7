// Package supervisor owns every long-lived kernel object of a node (shared
// maps, the pipeline prog array, TCX links) and the plugin processes that
// fill the pipeline. Kernel objects are pinned, so the supervisor can die and
// come back while the kernel keeps forwarding.
package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// Supervisor is one running supervisor.
type Supervisor struct {
	cfg    Config
	log    hclog.Logger
	layout pin.Layout

	lock  *os.File
	maps  *Maps
	pipe  *pipeline.Pipeline
	entry *Entry
	links []link.Link

	upgradeMu sync.Mutex // one upgrade at a time
	mu        sync.Mutex // guards state, plugins and every pipeline change
	state     *State
	plugins   map[string]*managed
	started   time.Time
	adoption  Adoption
	stopping  bool
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	metrics   *metrics
}

// Adoption reports what a start found already in place.
type Adoption struct {
	MapsReopened   []string `json:"maps_reopened"`
	MapsCreated    []string `json:"maps_created"`
	LinksReopened  []string `json:"links_reopened"`
	PluginsAdopted []string `json:"plugins_adopted"` // running processes reattached
	PluginsStarted []string `json:"plugins_started"`
	ProgramsReused []string `json:"programs_reused"` // plugins whose pinned programs stayed live
	Generation     uint32   `json:"generation"`      // active generation found at start
}

// Start brings the node's datapath up (or re-adopts it) and returns once
// plugins are active. Nothing in the kernel changes before every plugin has
// started and passed its checks, so a bad plugin leaves the datapath as it was.
func Start(ctx context.Context, cfg Config, log hclog.Logger) (*Supervisor, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, log: log, layout: pin.Layout{Root: cfg.BPFFS}, plugins: map[string]*managed{}, started: time.Now()}
	if err := s.open(); err != nil {
		s.closeKernel()
		return nil, err
	}
	if err := s.startPlugins(ctx); err != nil {
		s.killPlugins()
		s.closeKernel()
		return nil, err
	}
	if err := s.reconcile(ctx, "start"); err != nil {
		s.killPlugins()
		s.closeKernel()
		return nil, err
	}
	if err := s.attach(); err != nil {
		s.killPlugins()
		s.closeKernel()
		return nil, err
	}
	if err := s.activateAll(ctx); err != nil {
		s.killPlugins()
		s.closeKernel()
		return nil, err
	}
	if err := s.saveState(); err != nil {
		log.Error("save state", "error", err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.metrics = newMetrics(s)
	for name := range s.plugins {
		s.watch(mctx, name)
	}
	s.pollHealth(mctx)
	log.Info("supervisor ready", "generation", s.pipe.Active(), "devices", cfg.Devices)
	return s, nil
}

// open takes the state-dir lock, then opens or creates maps and the pipeline.
func (s *Supervisor) open() error {
	for _, d := range []string{s.cfg.StateDir, s.socketDir(), s.logDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		os.Chmod(d, 0o700)
	}
	lock, err := os.OpenFile(filepath.Join(s.cfg.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("another supervisor holds %s: %w", s.cfg.StateDir, err)
	}
	s.lock = lock
	if err := ensureBPFFS(s.cfg.BPFFS); err != nil {
		return err
	}
	if s.maps, err = OpenMapsSized(s.layout, s.cfg.MapSizes); err != nil {
		return err
	}
	s.adoption.MapsCreated = s.maps.Created
	for name := range s.maps.ByName {
		if !contains(s.maps.Created, name) {
			s.adoption.MapsReopened = append(s.adoption.MapsReopened, name)
		}
	}
	if s.pipe, err = pipeline.Open(s.maps.ByName[abi.MapCalls], s.maps.ByName[abi.MapConfig]); err != nil {
		return err
	}
	if v := s.pipe.ABIVersion(); v != abi.Version {
		return fmt.Errorf("pinned datapath speaks ABI %d, this supervisor ABI %d: migrate or remove %s", v, abi.Version, s.cfg.BPFFS)
	}
	s.adoption.Generation = s.pipe.Active()
	if s.state, err = LoadState(s.cfg.StateDir); err != nil {
		return err
	}
	if s.state.ActiveGen != s.pipe.Active() {
		// The kernel is the truth: a crash between flip and save loses only
		// the file's copy.
		s.log.Warn("state file generation differs from the datapath", "file", s.state.ActiveGen, "datapath", s.pipe.Active())
		s.state.ActiveGen = s.pipe.Active()
	}
	s.resolveUpgrade()
	return nil
}

// ensureBPFFS checks that root lies on a bpf filesystem, mounting one at
// /sys/fs/bpf when the default root has none.
func ensureBPFFS(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("create bpffs root %s: %w", root, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", root, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("bpffs root %s is not on a bpf filesystem (mount -t bpf bpf <dir>)", root)
	}
	return nil
}

func (s *Supervisor) socketDir() string { return filepath.Join(s.cfg.StateDir, "plugins") }
func (s *Supervisor) logDir() string    { return filepath.Join(s.cfg.StateDir, "logs") }

// attach loads the entry programs and attaches them to every device.
func (s *Supervisor) attach() error {
	var err error
	if s.entry, err = LoadEntry(s.maps.ByName); err != nil {
		return err
	}
	for _, dev := range s.cfg.Devices {
		existed := fileExists(s.layout.Link(dev, DirIngress))
		ls, err := s.entry.Attach(s.layout.Link, dev)
		if err != nil {
			return err
		}
		if existed {
			s.adoption.LinksReopened = append(s.adoption.LinksReopened, dev)
		}
		s.links = append(s.links, ls...)
	}
	return nil
}

// Stop releases GC leases, stops plugins and closes this process's handles.
// Kernel objects stay pinned and traffic keeps flowing.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.deactivateAll(ctx)
	s.killPlugins()
	s.wg.Wait()
	s.mu.Lock()
	for _, ps := range s.state.Plugins {
		ps.Reattach = nil
	}
	if err := s.saveStateLocked(); err != nil {
		s.log.Error("save state", "error", err)
	}
	s.mu.Unlock()
	s.closeKernel()
}

func (s *Supervisor) closeKernel() {
	closeLinks(s.links)
	if s.entry != nil {
		s.entry.Close()
	}
	if s.pipe != nil {
		s.pipe.Close()
	}
	if s.maps != nil {
		s.maps.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

func (s *Supervisor) saveState() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveStateLocked()
}

func (s *Supervisor) saveStateLocked() error {
	s.state.ActiveGen = s.pipe.Active()
	return s.state.Save(s.cfg.StateDir)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
