package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// hostIfPrefix + pod name must fit IFNAMSIZ-1 = 15 bytes.
	hostIfPrefix = "lxc"
	maxPodName   = 15 - len(hostIfPrefix)
	// Pod k lives in 10.240.k.0/24, so at most 254 pods per lab.
	maxPods = 254
	// procGrace is how long Close waits after SIGTERM before SIGKILL.
	procGrace = 2 * time.Second
)

var podNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)

// Options configure New.
type Options struct {
	// Pods are created in order; pod k (from 1) gets 10.240.k.2.
	Pods []string
	// NoOffload turns off TSO, GSO and GRO on both ends of every veth so
	// each skb is one segment (tx checksum offload stays on). Needs ethtool.
	NoOffload bool
	// Dir is the parent of the lab directory; default os.TempDir().
	Dir string
	// MountBPFFS mounts a private bpffs at Lab.BPFFS (<lab dir>/bpffs).
	MountBPFFS bool
	// External adds an external namespace behind the node's uplink device
	// (see external.go) that has no route to the pods.
	External bool
	// Cgroup creates a cgroup v2 directory for the lab at Lab.Cgroup (see
	// cgroup.go), for socket-level programs; EnterCgroup and
	// StartInCgroup put processes in it.
	Cgroup bool
}

// Lab is a node namespace plus pods. Methods may be called from several
// goroutines, but Pods must not be read while AddPod runs concurrently.
type Lab struct {
	ID   string
	Node *NS
	Pods map[string]*Pod
	// External is the namespace behind UplinkDevice; nil unless
	// Options.External.
	External *NS
	Dir      string // created by New, removed by Close
	BPFFS    string // private bpffs mount point, "" unless Options.MountBPFFS
	Cgroup   string // the lab's cgroup v2 directory, "" unless Options.Cgroup

	noOffload bool
	podOctet  byte // second octet of pod addresses: 10.<podOctet>.k.2
	routeMTU  int  // MTU of the pods' default route; 0: the device's

	mu         sync.Mutex
	closed     bool
	nextIndex  int
	namespaces []*NS       // created by this lab, deleted by Close
	procs      []*Proc     // started by this lab, killed by Close
	closers    []io.Closer // in-process servers, closed by Close
	mounted    bool
	nlogs      int
	cg         cgroupState
}

// Pod is a pod namespace wired to the node. Name is the pod name ("a");
// the namespace is NS.Name ("hp<id>-pod-a").
type Pod struct {
	*NS
	Name    string     // shadows NS.Name
	IP      netip.Addr // 10.240.k.2 on eth0
	Gateway netip.Addr // 10.240.k.1 on HostIf
	HostIf  string     // node-side veth, "lxc" + Name
	Index   int        // k
}

// New creates a lab. On error everything created so far is removed again.
func New(opts Options) (*Lab, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab needs iproute2's ip: %w", err)
	}
	if opts.NoOffload {
		if _, err := exec.LookPath("ethtool"); err != nil {
			return nil, fmt.Errorf("NoOffload needs ethtool (apt-get install ethtool): %w", err)
		}
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	return newLab(id, opts, 240, 0)
}

func newLab(id string, opts Options, podOctet byte, routeMTU int) (*Lab, error) {
	l := &Lab{ID: id, Pods: map[string]*Pod{}, noOffload: opts.NoOffload, nextIndex: 1, podOctet: podOctet, routeMTU: routeMTU}
	if err := l.setup(opts); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) setup(opts Options) error {
	dir, err := os.MkdirTemp(opts.Dir, "hotpath-lab-"+l.ID+"-")
	if err != nil {
		return fmt.Errorf("create lab dir: %w", err)
	}
	l.Dir = dir
	if opts.MountBPFFS {
		if err := l.mountBPFFS(); err != nil {
			return err
		}
	}
	if opts.Cgroup {
		if err := l.setupCgroup(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	node, err := l.addNS("node")
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.Node = node
	for key, val := range map[string]string{
		"net/ipv4/ip_forward":             "1",
		"net/ipv4/conf/all/rp_filter":     "0",
		"net/ipv4/conf/default/rp_filter": "0",
	} {
		if err := node.sysctl(key, val); err != nil {
			return err
		}
	}
	for _, name := range opts.Pods {
		if _, err := l.AddPod(name); err != nil {
			return err
		}
	}
	if opts.External {
		return l.addExternal()
	}
	return nil
}

func (l *Lab) mountBPFFS() error {
	path := filepath.Join(l.Dir, "bpffs")
	if err := os.Mkdir(path, 0o700); err != nil {
		return fmt.Errorf("create bpffs dir: %w", err)
	}
	if err := unix.Mount("bpf", path, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", path, err)
	}
	l.mu.Lock()
	l.BPFFS, l.mounted = path, true
	l.mu.Unlock()
	return nil
}

// AddPod creates pod namespace name, wires it to the node and waits until
// both veth ends are operationally up, so the first packet is not dropped.
func (l *Lab) AddPod(name string) (*Pod, error) {
	if len(name) > maxPodName || !podNameRE.MatchString(name) {
		return nil, fmt.Errorf("pod name %q: want 1-%d of [a-zA-Z0-9_-]", name, maxPodName)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, errors.New("add pod: lab closed")
	case l.Pods[name] != nil:
		return nil, fmt.Errorf("add pod %s: already exists", name)
	case l.nextIndex > maxPods:
		return nil, fmt.Errorf("add pod %s: lab full (%d pods)", name, maxPods)
	}
	k := l.nextIndex
	l.nextIndex++
	ns, err := l.addNS("pod-" + name)
	if err != nil {
		return nil, err
	}
	p := &Pod{
		NS:      ns,
		Name:    name,
		IP:      netip.AddrFrom4([4]byte{10, l.podOctet, byte(k), 2}),
		Gateway: netip.AddrFrom4([4]byte{10, l.podOctet, byte(k), 1}),
		HostIf:  hostIfPrefix + name,
		Index:   k,
	}
	if err := l.wire(p); err != nil {
		return nil, fmt.Errorf("add pod %s: %w", name, err)
	}
	l.Pods[name] = p
	return p, nil
}

// wire creates the veth pair inside the node namespace with its peer moved
// straight into the pod, so no interface ever appears in the root namespace.
func (l *Lab) wire(p *Pod) error {
	err := l.Node.ipBatch(
		fmt.Sprintf("link add %s type veth peer name eth0 netns %s", p.HostIf, p.NS.Name),
		fmt.Sprintf("addr add %s/24 dev %s", p.Gateway, p.HostIf),
	)
	if err != nil {
		return fmt.Errorf("create veth %s: %w", p.HostIf, err)
	}
	if err := l.Node.sysctl("net/ipv4/conf/"+p.HostIf+"/rp_filter", "0"); err != nil {
		return err
	}
	if l.noOffload {
		// Before link up, so not even the first packets are aggregated.
		for _, end := range []struct {
			ns     *NS
			ifname string
		}{{l.Node, p.HostIf}, {p.NS, "eth0"}} {
			if _, err := end.ns.Exec("ethtool", "-K", end.ifname, "tso", "off", "gso", "off", "gro", "off"); err != nil {
				return fmt.Errorf("disable offloads on %s: %w", end.ifname, err)
			}
		}
	}
	if err := l.Node.ipBatch(fmt.Sprintf("link set %s up", p.HostIf)); err != nil {
		return fmt.Errorf("set %s up: %w", p.HostIf, err)
	}
	err = p.NS.ipBatch(
		fmt.Sprintf("addr add %s/24 dev eth0", p.IP),
		"link set eth0 up",
		fmt.Sprintf("route add default via %s dev eth0%s", p.Gateway, l.mtuOpt()),
	)
	if err != nil {
		return fmt.Errorf("configure eth0: %w", err)
	}
	if err := l.Node.waitUp(p.HostIf, 5*time.Second); err != nil {
		return err
	}
	return p.NS.waitUp("eth0", 5*time.Second)
}

// addNS creates namespace "hp<id>-<suffix>" and brings lo up. l.mu is held.
func (l *Lab) addNS(suffix string) (*NS, error) {
	ns := &NS{Name: "hp" + l.ID + "-" + suffix, lab: l}
	if err := createNetns(ns.Name); err != nil {
		return nil, err
	}
	l.namespaces = append(l.namespaces, ns)
	if err := ns.ipBatch("link set lo up"); err != nil {
		return nil, fmt.Errorf("set lo up in %s: %w", ns.Name, err)
	}
	return ns, nil
}

// track registers an in-process server to be closed by Close.
func (l *Lab) track(c io.Closer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab closed")
	}
	l.closers = append(l.closers, c)
	return nil
}

// Close stops servers and processes, unmounts the bpffs, deletes the
// namespaces and removes Dir. It is idempotent and returns all errors.
func (l *Lab) Close() error {
	l.mu.Lock()
	closers, procs, namespaces := l.closers, l.procs, l.namespaces
	l.closers, l.procs, l.namespaces = nil, nil, nil
	l.closed = true
	mounted := l.mounted
	l.mu.Unlock()

	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i].Close())
	}
	for _, p := range procs {
		errs = append(errs, p.Stop(procGrace))
	}
	errs = append(errs, l.closeCgroup()...)
	if mounted {
		if err := unix.Unmount(l.BPFFS, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmount bpffs %s: %w", l.BPFFS, err))
		} else {
			l.mu.Lock()
			l.mounted = false
			l.mu.Unlock()
		}
	}
	// Pods before node: deleting a pod namespace also destroys its veth pair.
	for i := len(namespaces) - 1; i >= 0; i-- {
		errs = append(errs, deleteNetns(namespaces[i].Name))
	}
	l.mu.Lock()
	removeDir := l.Dir != "" && !l.mounted && l.cg.mount == "" // never recurse into a live bpffs or cgroup2
	l.mu.Unlock()
	if removeDir {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove lab dir: %w", err))
		} else {
			l.Dir = ""
		}
	}
	return errors.Join(errs...)
}

// NewT is New for tests: it fails t on error, and closes the lab in
// t.Cleanup, logging the tail of every process log first if t failed.
func NewT(t testing.TB, opts Options) *Lab {
	t.Helper()
	Privileged(t)
	l, err := New(opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.logTails(t)
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return l
}

func (l *Lab) logTails(t testing.TB) {
	l.mu.Lock()
	procs := append([]*Proc(nil), l.procs...)
	l.mu.Unlock()
	for _, p := range procs {
		b, err := os.ReadFile(p.Log)
		if err != nil {
			continue
		}
		if len(b) > 8<<10 {
			b = b[len(b)-8<<10:]
		}
		t.Logf("--- %s (pid %d) log %s:\n%s", p.Name, p.Pid, p.Log, b)
	}
}

// newID returns 6 hex digits not used by any existing namespace.
func newID() (string, error) {
	for range 10 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("lab id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if _, err := os.Stat(nsPath("hp" + id + "-node")); errors.Is(err, os.ErrNotExist) {
			return id, nil
		}
	}
	return "", errors.New("lab id: no free id after 10 tries")
}

// mtuOpt is the `ip route` option giving the pods' default route its MTU.
func (l *Lab) mtuOpt() string {
	if l.routeMTU == 0 {
		return ""
	}
	return fmt.Sprintf(" mtu %d", l.routeMTU)
}

// PodCIDR is the prefix every pod address of this lab lies in.
func (l *Lab) PodCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, l.podOctet, 0, 0}), 16)
}
