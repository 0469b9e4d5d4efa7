// Package underlay joins lab node namespaces into one network with an
// etcd, for cluster tests and benchmarks: a namespace of its own holds a
// bridge and etcd, each node gets a veth "underlay" into it. Nothing is
// created in the root namespace.
package underlay

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/hotpath/hotpath/cluster/etcdtest"
)

// EtcdIP is etcd's address on the underlay; node i has NodeIP(i).
const EtcdIP = "192.168.77.254"

// NodeIP is node i's underlay address.
func NodeIP(i int) string { return fmt.Sprintf("192.168.77.%d", i+1) }

// Net is the underlay namespace and its etcd.
type Net struct {
	NS   string
	Etcd *etcdtest.Server
}

// New creates the underlay namespace and its bridge; dir holds etcd's data.
func New(dir string) (*Net, error) {
	var id [3]byte
	rand.Read(id[:])
	n := &Net{NS: "hpcl" + hex.EncodeToString(id[:]) + "-u"}
	if err := ip("netns", "add", n.NS); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", n.NS, "link", "set", "lo", "up"},
		{"-n", n.NS, "link", "add", "br0", "type", "bridge"},
		{"-n", n.NS, "addr", "add", EtcdIP + "/24", "dev", "br0"},
		{"-n", n.NS, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	n.Etcd = etcdtest.New(filepath.Join(dir, "etcd"), EtcdIP, 2379, n.Wrap()...)
	return n, nil
}

// Wrap prefixes a command to run it in the underlay namespace.
func (n *Net) Wrap() []string { return []string{"ip", "netns", "exec", n.NS} }

// Join wires node namespace nodeNS as node i: a veth pair created inside
// the underlay namespace with its peer moved straight into the node.
func (n *Net) Join(i int, nodeNS string) error {
	port := fmt.Sprintf("u%d", i)
	for _, args := range [][]string{
		{"-n", n.NS, "link", "add", port, "type", "veth", "peer", "name", "underlay", "netns", nodeNS},
		{"-n", n.NS, "link", "set", port, "master", "br0", "up"},
		{"-n", nodeNS, "addr", "add", NodeIP(i) + "/24", "dev", "underlay"},
		{"-n", nodeNS, "link", "set", "underlay", "up"},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// Close stops etcd and deletes the namespace (and with it every veth).
func (n *Net) Close() error {
	if n.Etcd != nil {
		n.Etcd.Stop()
	}
	return ip("netns", "del", n.NS)
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, out)
	}
	return nil
}
