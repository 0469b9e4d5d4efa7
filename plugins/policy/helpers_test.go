package policy

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/plugins/ct"
)

// pod is one pod of the test cluster: lab pod name, namespace, labels.
type pod struct {
	name, ns string
	labels   map[string]string
	ip       netip.Addr
	p        *lab.Pod
}

// cluster is 6 pods in namespaces x and z (as the upstream NetworkPolicy e2e
// suite's x/a, x/b, ...), each serving TCP 80, TCP 81 and UDP 53, with the
// ct and policy stages on every pod device and a Store writing the maps.
type cluster struct {
	h     *plugintest.Harness
	lab   *lab.Lab
	pods  []*pod
	store *Store
	maps  *Maps
	dir   string
}

var testPorts = []struct {
	proto string
	port  int
}{{"tcp", 80}, {"tcp", 81}, {"udp", 53}}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	h := plugintest.New(t)
	var names []string
	for _, ns := range []string{"x", "z"} {
		for _, n := range []string{"a", "b", "c"} {
			names = append(names, ns+n)
		}
	}
	l := lab.NewT(t, lab.Options{Pods: names, NoOffload: true})
	c := &cluster{h: h, lab: l, dir: t.TempDir()}
	for _, n := range names {
		lp := l.Pods[n]
		c.pods = append(c.pods, &pod{name: n, ns: n[:1], labels: map[string]string{"pod": n[1:]}, ip: lp.IP, p: lp})
		for _, tp := range testPorts {
			addr := fmt.Sprintf("%s:%d", lp.IP, tp.port)
			var err error
			if tp.proto == "tcp" {
				_, err = lab.EchoServer(lp.NS, addr)
			} else {
				_, err = lab.UDPEcho(lp.NS, addr)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	ctProg, _, err := ct.LoadStage(h.Layout, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctProg.Close() })
	polProg, _, err := LoadStage(h.Layout, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { polProg.Close() })
	h.Install(t, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: ctProg, abi.AbiHpSlotHP_SLOT_POLICY: polProg})
	h.AttachLab(t, l)
	if c.maps, err = OpenMaps(h.Layout); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.maps.Close() })
	if c.store, err = OpenStore(c.maps, c.dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.pods {
		if _, err := c.store.AddEndpoint(netpol.Endpoint{IP: p.ip.String(), Namespace: p.ns, Labels: p.labels}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// setPolicies makes the store hold exactly the policies of yml.
func (c *cluster) setPolicies(t *testing.T, yml string) {
	t.Helper()
	for _, pi := range c.store.Policies() {
		if err := c.store.Delete(netpol.DeleteArgs{Namespace: pi.Namespace, Name: pi.Name}); err != nil {
			t.Fatal(err)
		}
	}
	if yml != "" {
		c.apply(t, yml)
	}
}

// apply adds or replaces the policies of yml.
func (c *cluster) apply(t *testing.T, yml string) {
	t.Helper()
	nps, err := netpol.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.Apply(nps); err != nil {
		t.Fatal(err)
	}
}

// probe is one measured (source, destination, port).
type probe struct {
	src, dst *pod
	proto    string
	port     int
}

func (p probe) String() string {
	return fmt.Sprintf("%s/%s -> %s/%s %s/%d", p.src.ns, p.src.name[1:], p.dst.ns, p.dst.name[1:], p.proto, p.port)
}

// probes lists every ordered pair of distinct pods on every test port.
func (c *cluster) probes() []probe {
	var out []probe
	for _, s := range c.pods {
		for _, d := range c.pods {
			if s == d {
				continue
			}
			for _, tp := range testPorts {
				out = append(out, probe{src: s, dst: d, proto: tp.proto, port: tp.port})
			}
		}
	}
	return out
}

// measure runs every probe at once: a TCP connection that echoes, or a UDP
// datagram that comes back, within the timeout is "allowed".
func (c *cluster) measure(ps []probe, timeout time.Duration) []bool {
	out := make([]bool, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			addr := fmt.Sprintf("%s:%d", p.dst.ip, p.port)
			out[i] = p.src.p.NS.Echo(ctx, p.proto, addr, []byte("hello "+p.String())) == nil
		}()
	}
	wg.Wait()
	return out
}
