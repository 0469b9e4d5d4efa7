// Package supervisor owns every long-lived kernel object of a node (shared
// maps, the pipeline prog array, TCX links) and the plugin processes that
// fill the pipeline. Kernel objects are pinned, so the supervisor can die and
// come back while the kernel keeps forwarding.
package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/cluster"
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

	// mu guards the fields below. It is never held across a call into a
	// plugin: changes that call plugins run one at a time on the change
	// goroutine (serial.go) and take mu only to read or publish.
	mu       sync.Mutex
	state    *State
	gens     *gens
	plugins  map[string]*managed
	started  time.Time
	adoption Adoption
	stopping bool
	// cgroupLoaded: per generation being built, each loaded plugin's cgroup
	// programs, attached when the generation's programs are adopted.
	cgroupLoaded map[uint32]map[string]map[string]string

	changes chan change
	quit    <-chan struct{}
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	metrics *metrics
	mon     monitorHub                           // `hotpath monitor` streams (monitor.go)
	sync    interface{ Status() cluster.Status } // etcd or Kubernetes source, nil when off (clustersync.go)

	remapLeft   *RemapState       // a remap past its flip a dead supervisor left, finished at open (remaptx.go)
	resizeStart map[string]uint32 // sizes the config asks for that differ from a live resize's (resize.go)
	grow        *autoGrow         // auto-grow checks, nil when off (autogrow.go)
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
// plugins are active. The config and the devices are checked before
// anything is adopted or changed, and nothing in the datapath changes
// before every plugin has started and passed its checks, so a bad plugin
// leaves the datapath as it was. A failed start ends the plugins it
// started and leaves running the ones it adopted.
func Start(ctx context.Context, cfg Config, log hclog.Logger) (*Supervisor, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := ensureTunnel(&cfg); err != nil {
		return nil, err
	}
	if err := checkDevices(cfg.Devices); err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, log: log, layout: pin.Layout{Root: cfg.BPFFS}, plugins: map[string]*managed{}, started: time.Now()}
	if err := s.open(); err != nil {
		s.closeKernel()
		return nil, err
	}
	if err := s.bringUp(ctx); err != nil {
		s.abandon()
		return nil, err
	}
	mctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.metrics = newMetrics(s)
	s.resizeAtStart(ctx)
	s.runChanges(mctx)
	s.startAutoGrow(mctx)
	for name := range s.plugins {
		s.watch(mctx, name)
	}
	s.pollHealth(mctx)
	s.watchRouting(mctx)
	log.Info("supervisor ready", "generation", s.gens.Active(), "devices", cfg.Devices)
	return s, nil
}

// bringUp starts or adopts the plugins, builds the generation they need,
// attaches the devices and grants the leases.
func (s *Supervisor) bringUp(ctx context.Context) error {
	if err := s.startPlugins(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	for name := range s.plugins {
		s.recordInstance(name)
	}
	s.mu.Unlock()
	if err := s.loadEntry(); err != nil {
		return err
	}
	if err := s.reconcile(ctx, "start"); err != nil {
		return err
	}
	if err := s.attach(); err != nil {
		return err
	}
	if err := s.activateAll(ctx); err != nil {
		return err
	}
	return s.saveState()
}

// abandon undoes a failed start: plugins this start launched are stopped,
// adopted ones keep running untouched for the next supervisor, and the
// state file keeps how to reattach them.
func (s *Supervisor) abandon() {
	for name, m := range s.plugins {
		if m.inst == nil {
			continue
		}
		if m.adopted {
			m.inst.Close()
			continue
		}
		m.inst.Kill()
		if ps := s.state.Plugins[name]; ps != nil {
			ps.Reattach = nil
		}
	}
	if s.state != nil && s.gens != nil {
		if err := s.saveState(); err != nil {
			s.log.Error("save state", "error", err)
		}
	}
	s.closeKernel()
}

// checkDevices refuses devices that do not exist, before anything changes.
func checkDevices(devs []string) error {
	for _, d := range devs {
		if _, err := net.InterfaceByName(d); err != nil {
			return fmt.Errorf("device %s: %w", d, err)
		}
	}
	return nil
}

// open takes the state-dir lock, then opens or creates maps and the pipeline.
func (s *Supervisor) open() error {
	for _, d := range []string{s.cfg.StateDir, s.socketDir(), s.logDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
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
	if s.state, err = LoadState(s.cfg.StateDir); err != nil {
		return err
	}
	if err := ensureBPFFS(s.cfg.BPFFS); err != nil {
		return err
	}
	if err := s.resolveRemap(); err != nil {
		return err
	}
	if s.maps, err = OpenMapsSized(s.layout, s.mapSizes()); err != nil {
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
	s.gens = newGens(s.pipe, s.state)
	s.adoption.Generation = s.gens.Active()
	if s.state.ActiveGen != s.gens.Active() {
		// The kernel is the truth: a crash between flip and save loses only
		// the file's copy.
		s.log.Warn("state file generation differs from the datapath", "file", s.state.ActiveGen, "datapath", s.gens.Active())
	}
	if err := s.finishRemap(); err != nil {
		return err
	}
	return s.resolveUpgrade()
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
	if err := s.loadEntry(); err != nil {
		return err
	}
	if err := s.setForwarding(); err != nil {
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
	s.wg.Wait() // the change in progress, the watchers, the health poll
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.deactivateAll(ctx)
	s.killPlugins()
	s.mu.Lock()
	for _, ps := range s.state.Plugins {
		ps.Reattach = nil
	}
	err := s.saveStateLocked()
	s.mu.Unlock()
	if err != nil {
		s.log.Error("save state", "error", err)
	}
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

// saveStateLocked writes the state file with gens' numbers. Callers hold mu.
func (s *Supervisor) saveStateLocked() error {
	s.gens.snapshot(s.state)
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
