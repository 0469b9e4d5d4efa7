package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Multi-node mode: two labs, each a node namespace with its own pods, its
// own pod CIDR, its own bpffs and (started by the caller) its own
// supervisor, joined by an underlay veth pair, like two hosts on one L2
// segment:
//
//	node 0: pods 10.240.k.2 ─ lxc* ┐                    ┌ lxc* ─ pods 10.241.k.2 :node 1
//	                               underlay 198.51.100.1 ═══ underlay 198.51.100.2
//
// The nodes have no route to each other's pods: only an overlay (the tunnel
// plugin, or static routes over the kernel's own VXLAN for a baseline)
// connects them. The pods' default route carries the overlay's MTU
// (underlay MTU minus VXLAN's 50 bytes), so their path MTU accounts for the
// encapsulation.

// UnderlayDevice is each node's device on the underlay.
const UnderlayDevice = "underlay"

// UnderlayMTU is the underlay's MTU; OverlayMTU what is left for a pod's
// IPv4 packet inside VXLAN.
const (
	UnderlayMTU = 1500
	OverlayMTU  = UnderlayMTU - 50
)

// MultiOptions configure NewMulti.
type MultiOptions struct {
	// Pods per node: Pods[i] are created on node i, as Options.Pods. Pod
	// names must be unique across nodes (tests name them by node).
	Pods       [2][]string
	NoOffload  bool
	Dir        string
	MountBPFFS bool // a private bpffs per node (Lab.BPFFS)
}

// Multi is two nodes joined by an underlay.
type Multi struct {
	Nodes    [2]*Lab
	Underlay [2]netip.Addr // node i's underlay address
}

// NewMulti creates both nodes and the underlay; on error everything created
// is removed again.
func NewMulti(opts MultiOptions) (*Multi, error) {
	m := &Multi{Underlay: [2]netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}}
	for i := range m.Nodes {
		id, err := newID()
		if err != nil {
			return nil, errors.Join(err, m.Close())
		}
		o := Options{Pods: opts.Pods[i], NoOffload: opts.NoOffload, Dir: opts.Dir, MountBPFFS: opts.MountBPFFS}
		n, err := newLab(id, o, byte(240+i), OverlayMTU)
		if err != nil {
			return nil, errors.Join(err, m.Close())
		}
		m.Nodes[i] = n
	}
	if err := m.wireUnderlay(); err != nil {
		return nil, errors.Join(err, m.Close())
	}
	return m, nil
}

func (m *Multi) wireUnderlay() error {
	a, b := m.Nodes[0], m.Nodes[1]
	err := a.Node.ipBatch(
		fmt.Sprintf("link add %s mtu %d type veth peer name %s mtu %d netns %s", UnderlayDevice, UnderlayMTU, UnderlayDevice, UnderlayMTU, b.Node.Name),
		fmt.Sprintf("addr add %s/24 dev %s", m.Underlay[0], UnderlayDevice),
		fmt.Sprintf("link set %s up", UnderlayDevice),
	)
	if err != nil {
		return fmt.Errorf("create underlay: %w", err)
	}
	err = b.Node.ipBatch(
		fmt.Sprintf("addr add %s/24 dev %s", m.Underlay[1], UnderlayDevice),
		fmt.Sprintf("link set %s up", UnderlayDevice),
	)
	if err != nil {
		return fmt.Errorf("configure underlay on %s: %w", b.Node.Name, err)
	}
	for _, n := range m.Nodes {
		if n.noOffload {
			if _, err := n.Node.Exec("ethtool", "-K", UnderlayDevice, "tso", "off", "gso", "off", "gro", "off"); err != nil {
				return fmt.Errorf("disable offloads on underlay: %w", err)
			}
		}
		if err := n.Node.waitUp(UnderlayDevice, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Close closes both nodes (node 1 first: its namespace holds the underlay's
// peer).
func (m *Multi) Close() error {
	var errs []error
	for i := len(m.Nodes) - 1; i >= 0; i-- {
		if m.Nodes[i] != nil {
			errs = append(errs, m.Nodes[i].Close())
		}
	}
	return errors.Join(errs...)
}

// NewMultiT is NewMulti for tests, closed in t.Cleanup with the logs of
// every process when t failed.
func NewMultiT(t testing.TB, opts MultiOptions) *Multi {
	t.Helper()
	Privileged(t)
	m, err := NewMulti(opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range m.Nodes {
				n.logTails(t)
			}
		}
		if err := m.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return m
}
