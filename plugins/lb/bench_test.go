package lb

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/ct"
)

// Per-packet cost of the whole pipeline (entry program + stages), timed by
// the kernel with BPF_PROG_TEST_RUN. Run with:
//
//	go test -run '^$' -bench Privileged ./plugins/lb
//
// BPF_PROG_TEST_RUN repeats a program on one skb, so a translated packet
// would be a different packet on the next round. The established-flow
// benchmark therefore uses two services that translate into each other
// (A -> B's VIP, B -> A's VIP): every round is an established flow of one
// of them, with a real DNAT and checksum update.

func benchRepeat(b *testing.B, prog *ebpf.Program, pkt []byte) {
	b.Helper()
	if _, _, err := prog.Benchmark(pkt, 1000, nil); err != nil { // warm up: create the flows
		b.Fatal(err)
	}
	ret, d, err := prog.Benchmark(pkt, b.N, b.ResetTimer)
	if err != nil {
		b.Fatal(err)
	}
	if ret != 0 {
		b.Fatalf("verdict %d", ret)
	}
	b.ReportMetric(float64(d.Nanoseconds()), "ns/pkt")
}

func BenchmarkPrivilegedCTOnly(b *testing.B) {
	h := newLB(b)
	ctProg, _, err := ct.LoadStage(h.Layout, 2, ct.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer ctProg.Close()
	h.Install(b, map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: ctProg})
	benchRepeat(b, h.Entry.Ingress, packet.TCP(client, be1, packet.ACK, nil))
}

func BenchmarkPrivilegedLBEstablished(b *testing.B) {
	for _, alg := range []string{"random", "maglev"} {
		b.Run(alg, func(b *testing.B) {
			h := newLB(b)
			h.add(b, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: alg, Backends: backends("10.96.0.11:80")})
			h.add(b, services.ServiceAddArgs{VIP: "10.96.0.11:80/tcp", Algorithm: alg, Backends: backends("10.96.0.10:80")})
			benchRepeat(b, h.Entry.Ingress, packet.TCP(client, vipTCP, packet.ACK, nil))
		})
	}
}

func BenchmarkPrivilegedLBNotAService(b *testing.B) {
	h := newLB(b)
	h.add(b, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Backends: backends(be1.String())})
	benchRepeat(b, h.Entry.Ingress, packet.TCP(client, be1, packet.ACK, nil))
}

func BenchmarkPrivilegedLBReply(b *testing.B) {
	// A reply of a flow whose OUT entry carries a rev_nat_index pointing
	// at the backend's own address: reverse NAT runs, the packet stays
	// the same one.
	h := newLB(b)
	h.add(b, services.ServiceAddArgs{VIP: be1.String() + "/tcp", Backends: backends(be1.String())})
	h.run(b, in, packet.TCP(client, be1, packet.SYN, nil))
	benchRepeat(b, h.Entry.Egress, packet.TCP(be1, client, packet.ACK, nil))
}

// New flows cannot be repeated on one skb: each round here is one run of
// a fresh SYN, timed by the kernel.
func BenchmarkPrivilegedLBNewFlow(b *testing.B) {
	for _, alg := range []string{"random", "maglev"} {
		b.Run(alg, func(b *testing.B) {
			h := newLB(b)
			h.add(b, services.ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: alg, Backends: backends(be1.String(), be2.String(), be3.String())})
			var total time.Duration
			for i := range b.N {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)}), uint16(i))
				_, d, err := h.Entry.Ingress.Benchmark(packet.TCP(src, vipTCP, packet.SYN, nil), 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				total += d
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt")
		})
	}
}
