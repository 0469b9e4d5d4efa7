package lb

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"testing"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest"
	"github.com/hotpath/hotpath/core/services"
)

const (
	in  = abi.AbiHpDirHP_DIR_INGRESS
	out = abi.AbiHpDirHP_DIR_EGRESS
)

const testSeed = 0x5eed1234

// lbHarness is a private datapath with the lb stages and the ct stage in
// one generation, and a store over its maps.
type lbHarness struct {
	*plugintest.Harness
	store *Store
	maps  *Maps
	cfg   Config
}

func newLB(t testing.TB) *lbHarness {
	t.Helper()
	return newLBWith(t, func(*Config) {})
}

// newLBWith is newLB with the config changed by edit.
func newLBWith(t testing.TB, edit func(*Config)) *lbHarness {
	t.Helper()
	h := plugintest.New(t)
	cfg := DefaultConfig()
	cfg.MaglevSeed = testSeed
	edit(&cfg)
	progs, release, err := withCT(h.Layout, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	h.Install(t, progs)
	maps, err := OpenMaps(h.Layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(maps.Close)
	return &lbHarness{Harness: h, store: NewStore(maps, cfg), maps: maps, cfg: cfg}
}

// run sends a packet and fails the test on a harness error.
func (h *lbHarness) run(t testing.TB, dir abi.AbiHpDir, pkt []byte) plugintest.Result {
	t.Helper()
	r, err := h.Run(dir, pkt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// add creates a service through the same path as the Invoke command.
func (h *lbHarness) add(t testing.TB, a services.ServiceAddArgs) services.ServiceInfo {
	t.Helper()
	res, err := Run(h.store, "service-add", mustJSON(t, a))
	if err != nil {
		t.Fatal(err)
	}
	return res.(services.ServiceInfo)
}

func (h *lbHarness) invoke(t testing.TB, cmd string, args any) {
	t.Helper()
	if _, err := Run(h.store, cmd, mustJSON(t, args)); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}

func (h *lbHarness) service(t testing.TB, vip string) services.ServiceInfo {
	t.Helper()
	all, err := h.store.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.VIP == vip {
			return s
		}
	}
	t.Fatalf("no service %s in %+v", vip, all)
	return services.ServiceInfo{}
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func backends(addrs ...string) []services.BackendArg {
	var out []services.BackendArg
	for _, a := range addrs {
		b, err := services.ParseBackend(a)
		if err != nil {
			panic(err)
		}
		out = append(out, b.Arg())
	}
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// ctTuple is a CT key for a packet from src to dst.
func ctTuple(src, dst netip.AddrPort, proto, flags uint8) abi.CTTuple {
	return abi.CTTuple{
		Saddr: addrU32(src.Addr()), Daddr: addrU32(dst.Addr()),
		Sport: htons(src.Port()), Dport: htons(dst.Port()), Nexthdr: proto, Flags: flags,
	}
}

// idOf finds the id of the backend at addr in a listed service.
func idOf(t testing.TB, s services.ServiceInfo, addr netip.AddrPort) uint32 {
	t.Helper()
	for _, b := range s.Backends {
		if b.Address == addr.String() {
			return b.ID
		}
	}
	t.Fatalf("service %s has no backend %s", s.VIP, addr)
	return 0
}

// ipHeaderValid checks the IPv4 header checksum of an Ethernet frame alone,
// for packets whose L4 checksum is legitimately absent.
func ipHeaderValid(b []byte) bool {
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

// fileExists reports whether path exists (for pin assertions).
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
