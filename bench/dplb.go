package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugintest/packet"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/mono"
	"github.com/hotpath/hotpath/plugins/lb"
)

// Services of the lb datapath rows. Each path gets its own VIP so that the
// rows do not share CT entries.
var (
	// lbNewVIP has three backends: the new-flow rows select among them.
	lbNewVIP = netip.MustParseAddrPort("10.96.0.20:80")
	// lbPingVIP and lbPongVIP translate into each other. Repeat runs one
	// skb again and again and DNAT rewrites it, so the second round would
	// be another packet; with the pair, every round is an established
	// flow of one of the two services with a real DNAT and checksum update
	// (plugins/lb/bench_test.go measures the same way).
	lbPingVIP = netip.MustParseAddrPort("10.96.0.30:80")
	lbPongVIP = netip.MustParseAddrPort("10.96.0.31:80")
	// The reply rows use the same pair: the reply of the flow to lbPingVIP
	// comes from lbPongVIP (its backend) and leaves with lbPingVIP as its
	// source, which is the reply of the flow to lbPongVIP, whose reverse
	// NAT makes it lbPongVIP's again: every round a real rewrite with
	// checksum updates (checked once per run, see checkRevNAT).
	// lbPassAddr is no service: its established packets pass lb and
	// lb-select with nothing to do, which measures one pass-through hop.
	lbPassAddr = netip.MustParseAddrPort("10.240.2.9:8080")
)

// lbDP is the datapath harness with the lb stages loaded, the services
// above configured through the plugin's own command path, the monolithic
// program, and generations that hold subsets of the stages, so that each
// stage's cost is a difference between two generations run on the same
// packets.
type lbDP struct {
	h      *dpHarness
	stages *lb.Stages // as the plugin installs them: lb chooses for new flows itself
	// split are the same stages with split_stages: each generation that
	// measures one stage against another runs lb-select and lb-dnat as
	// stages of their own, so that their differences are each one's cost.
	split *lb.Stages
	maps  *lb.Maps
	store *lb.Store
	mono  *mono.Programs
	// Generations: ct only (the datapath suite's), lb + ct, lb + lb-select
	// + ct, all but lb-revnat, the whole pipeline as the lb plugin installs
	// it, and lb-select + ct (one hop that has nothing to do for a packet
	// that is not to a service: the cost of a hop in this run).
	genCT, genLB, genSel, genNoRev, genFull, genHop uint32
}

func newLBDP(h *dpHarness, ctProg *ebpf.Program, genCT uint32) (d *lbDP, err error) {
	d = &lbDP{h: h, genCT: genCT}
	defer func() {
		if err != nil {
			d.close()
			d = nil
		}
	}()
	if d.stages, err = lb.LoadStages(h.layout, h.gen+1, lb.DefaultConfig(), lb.AllSlots); err != nil {
		return d, err
	}
	split := lb.DefaultConfig()
	split.SplitStages = true
	if d.split, err = lb.LoadStages(h.layout, h.gen+2, split, lb.AllSlots); err != nil {
		return d, err
	}
	if d.maps, err = lb.OpenMaps(h.layout); err != nil {
		return d, err
	}
	d.store = lb.NewStore(d.maps, lb.DefaultConfig())
	if d.mono, err = mono.Load(h.maps.ByName); err != nil {
		return d, err
	}
	gens := []struct {
		gen    *uint32
		slots  []string
		stages *lb.Stages
	}{
		{&d.genLB, []string{lb.SlotLB}, d.split},
		{&d.genSel, []string{lb.SlotLB, lb.SlotSelect}, d.split},
		{&d.genNoRev, []string{lb.SlotLB, lb.SlotSelect, lb.SlotDNAT}, d.split},
		{&d.genFull, lb.AllSlots, d.stages},
		{&d.genHop, []string{lb.SlotSelect}, d.split},
	}
	for _, g := range gens {
		progs := map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: ctProg}
		for _, name := range g.slots {
			id, err := abi.ParseSlot(name)
			if err != nil {
				return d, err
			}
			progs[id] = g.stages.Progs[id]
		}
		if *g.gen, err = h.install(progs); err != nil {
			return d, err
		}
	}
	var backends []services.BackendArg
	for i := range 3 {
		backends = append(backends, services.BackendArg{Address: fmt.Sprintf("10.240.2.%d:8080", 2+i)})
	}
	for _, a := range []services.ServiceAddArgs{
		{VIP: lbNewVIP.String() + "/tcp", Algorithm: "maglev", Backends: backends},
		{VIP: lbPingVIP.String() + "/tcp", Algorithm: "maglev", Backends: []services.BackendArg{{Address: lbPongVIP.String()}}},
		{VIP: lbPongVIP.String() + "/tcp", Algorithm: "maglev", Backends: []services.BackendArg{{Address: lbPingVIP.String()}}},
	} {
		if err := d.command("service-add", a); err != nil {
			return d, err
		}
	}
	return d, nil
}

// command runs an lb command the way the plugin's Invoke does.
func (d *lbDP) command(name string, args any) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	if _, err := lb.Run(d.store, name, b); err != nil {
		return fmt.Errorf("lb %s: %w", name, err)
	}
	return nil
}

// addFillers adds the filler services servicesAhead(to)[from:to] (alg:
// random or maglev with the default M, three backends each, addresses
// nothing uses) with one service-apply.
func (d *lbDP) addFillers(from, to int, alg string) error {
	all := servicesAhead(to)[from:to]
	return d.command("service-apply", serviceArgs(all, alg))
}

// delFillers deletes the filler services servicesAhead(n).
func (d *lbDP) delFillers(n int) error {
	for _, s := range servicesAhead(n) {
		if err := d.command("service-del", services.ServiceArgs{VIP: s.vip.String() + "/tcp"}); err != nil {
			return err
		}
	}
	return nil
}

// serviceArgs turns bench services into lb service-add arguments.
func serviceArgs(svcs []service, alg string) []services.ServiceAddArgs {
	out := make([]services.ServiceAddArgs, 0, len(svcs))
	for _, s := range svcs {
		a := services.ServiceAddArgs{VIP: s.vip.String() + "/tcp", Algorithm: alg}
		for _, b := range s.backends {
			a.Backends = append(a.Backends, services.BackendArg{Address: b.String()})
		}
		out = append(out, a)
	}
	return out
}

// pipeline is the runner of generation gen's ingress (egress: false) entry.
func (d *lbDP) pipeline(gen uint32, ingress bool) runner {
	prog := d.h.entry.Ingress
	if !ingress {
		prog = d.h.entry.Egress
	}
	return func(pkt []byte, repeat int) (time.Duration, error) {
		d.h.use(gen)
		return benchProg(prog, pkt, repeat)
	}
}

// dpStep is one way of running one packet, and where its mean goes.
type dpStep struct {
	name string
	run  runner
	pkt  []byte
	out  *[]float64
}

// dpChunks is how many turns interleaved gives each step per run.
const dpChunks = 10

// interleaved runs every step's packet 1000 times first, in order (to
// create its entries), then all of them in turns, dpChunks rounds of
// dpRepeat/dpChunks runs each, and appends each step's mean in ns. Taking
// turns makes drift and bursts of load from elsewhere on the VM fall on
// every side of a comparison alike.
func interleaved(steps []dpStep) error {
	for _, st := range steps {
		if _, err := st.run(st.pkt, 1000); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	sums := make([]float64, len(steps))
	for range dpChunks {
		for i, st := range steps {
			t, err := st.run(st.pkt, dpRepeat/dpChunks)
			if err != nil {
				return fmt.Errorf("%s: %w", st.name, err)
			}
			sums[i] += ns(t)
		}
	}
	for i, st := range steps {
		*st.out = append(*st.out, sums[i]/dpChunks)
	}
	return nil
}

// lbPackets are the packets of the lb rows.
type lbPackets struct {
	syns, acks [][]byte // new flows to lbNewVIP and their second packets
	est        []byte   // to lbPingVIP (ping-pong, see above)
	reply      []byte   // lbPongVIP → client: reverse NAT to lbPingVIP
	pass       []byte   // to lbPassAddr: no service
}

func newLBPackets() lbPackets {
	var p lbPackets
	p.syns, p.acks = dpFlowPackets(dpFlows, lbNewVIP)
	payload := make([]byte, payload10)
	p.est = packet.TCP(dpClient, lbPingVIP, packet.ACK|packet.PSH, payload)
	p.reply = packet.TCP(lbPongVIP, dpClient, packet.ACK|packet.PSH, payload)
	p.pass = packet.TCP(dpClient, lbPassAddr, packet.ACK|packet.PSH, payload)
	return p
}

// hops runs pkt once through generation gen and returns the tail calls it
// made, as the pipeline counted them in the packet's context (hp_ctx.hops).
// BPF_PROG_TEST_RUN runs on this CPU; the context of the CPU whose last
// packet was this one is the answer (all CPUs' agree when both ran it).
func (d *lbDP) hops(gen uint32, ingress bool, pkt []byte) (int, error) {
	if _, err := d.pipeline(gen, ingress)(pkt, 1); err != nil {
		return 0, err
	}
	dir := uint32(abi.AbiHpDirHP_DIR_INGRESS)
	if !ingress {
		dir = uint32(abi.AbiHpDirHP_DIR_EGRESS)
	}
	var ctxs []abi.Ctx
	if err := d.h.maps.ByName[abi.MapPctx].Lookup(dir, &ctxs); err != nil {
		return 0, fmt.Errorf("read packet contexts: %w", err)
	}
	src, dst := packetAddrs(pkt)
	n := -1
	for _, c := range ctxs {
		// saddr/daddr may have been translated: match either end.
		if c.Gen == gen && (c.Saddr == src || c.Daddr == dst || c.Saddr == dst || c.Daddr == src) {
			n = max(n, int(c.Hops))
		}
	}
	if n < 0 {
		return 0, fmt.Errorf("no CPU's context holds the packet just run")
	}
	return n, nil
}

// packetAddrs are the IPv4 source and destination of an Ethernet frame,
// as the context stores them (network order read as little endian).
func packetAddrs(pkt []byte) (src, dst uint32) {
	ip := pkt[14:]
	return binary.LittleEndian.Uint32(ip[12:16]), binary.LittleEndian.Uint32(ip[16:20])
}

// checkRevNAT runs the reply once through run's program and fails unless
// its source came out as want: the reply rows must measure a real rewrite.
func checkRevNAT(prog *ebpf.Program, pkt []byte, want netip.AddrPort) error {
	out := make([]byte, len(pkt)+256)
	ret, err := prog.Run(&ebpf.RunOptions{Data: pkt, DataOut: out})
	if err != nil {
		return err
	}
	if ret != 0 {
		return fmt.Errorf("reply verdict %d, want pass", ret)
	}
	ip := out[14:]
	got := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(ip[20:22]))
	if got != want {
		return fmt.Errorf("reply left with source %s, want %s (reverse NAT did not rewrite)", got, want)
	}
	return nil
}

func (d *lbDP) close() {
	if d.mono != nil {
		d.mono.Close()
	}
	if d.maps != nil {
		d.maps.Close()
	}
	if d.split != nil {
		d.split.Close()
	}
	if d.stages != nil {
		d.stages.Close()
	}
}
