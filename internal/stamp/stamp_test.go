package stamp_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/internal/dptest"
	"github.com/hotpath/hotpath/internal/stamp"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
	"github.com/hotpath/hotpath/supervisor/pipeline"
)

// TestPrivilegedGenerationFlipsAreAtomic flips the pipeline generation
// 100k+ times under real traffic. Each flip fills the next bank with stages
// whose stamp differs from the last time that bank was live; the check stage
// counts any packet whose stamps disagree with each other or with the
// generation the entry program chose. The count must be zero.
func TestPrivilegedGenerationFlipsAreAtomic(t *testing.T) {
	flips := 100_000
	if v, err := strconv.Atoi(os.Getenv("HOTPATH_FLIPS")); err == nil && v > 0 {
		flips = v
	}
	l := lab.NewT(t, lab.Options{Pods: []string{"a", "b"}})
	h := dptest.New(t)
	maps, pipe := h.Maps, h.Pipe

	// Two differently tagged sets per bank.
	var sets [2][]*stamp.Set
	for set := 0; set < 2; set++ {
		for bank := uint32(0); bank < abi.Banks; bank++ {
			s, err := stamp.Load(maps.ByName, uint32(set)*abi.Banks+bank)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sets[set] = append(sets[set], s)
		}
	}
	gen := uint32(1)
	if err := pipe.Prepare(gen, sets[0][pipeline.Bank(gen)].Slots()); err != nil {
		t.Fatal(err)
	}
	pipe.Flip(gen)

	h.AttachLab(t, l)

	b := l.Pods["b"]
	srv := b.IP.String() + ":8080"
	if _, err := lab.EchoServer(b.NS, srv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var streams []*lab.Stream
	for i := 0; i < 2; i++ {
		s, err := lab.StartStream(ctx, l.Pods["a"].NS, srv, 256, 0)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}

	// Flip. A bank is rewritten only after a grace period has passed since
	// packets could last enter it.
	leftAt := make([]int, abi.Banks) // flip number at which each bank stopped being live
	settledAt, settles, entered := 0, 0, 0
	start := time.Now()
	for i := 1; i <= flips; i++ {
		next := gen + 1
		bank := pipeline.Bank(next)
		if leftAt[bank] >= settledAt && i > int(abi.Banks) {
			if err := pipe.Settle(); err != nil {
				t.Fatal(err)
			}
			settledAt, settles = i, settles+1
		}
		set := sets[(next/abi.Banks)%2][bank]
		if err := pipe.Prepare(next, set.Slots()); err != nil {
			t.Fatalf("flip %d: %v", i, err)
		}
		if pipe.FirstPacket(gen) != 0 {
			entered++
		}
		pipe.Flip(next)
		leftAt[pipeline.Bank(gen)] = i
		gen = next
	}
	took := time.Since(start)

	var total abi.Metric
	for _, s := range streams {
		st := s.Stop()
		if st.Err != nil {
			t.Errorf("stream broke: %v", st.Err)
		}
		total.Bytes += uint64(st.Bytes)
	}
	counters, err := supervisor.DatapathCounters(maps.ByName[abi.MapMetrics])
	if err != nil {
		t.Fatal(err)
	}
	mismatch := counters[abi.AbiHpReasonHP_R_GEN_MISMATCH]
	fwd := counters[abi.AbiHpReasonHP_R_FORWARD]
	missed := counters[abi.AbiHpReasonHP_R_MISSED_TAIL_CALL]
	t.Logf("%d flips in %s (%d grace periods); %d generations saw packets; forwarded %d packets; streams echoed %d bytes",
		flips, took.Round(time.Millisecond), settles, entered, fwd[0].Packets+fwd[1].Packets, total.Bytes)
	if n := mismatch[0].Packets + mismatch[1].Packets; n != 0 {
		t.Errorf("%d packets ran stages of two generations", n)
	}
	if n := missed[0].Packets + missed[1].Packets; n != 0 {
		t.Errorf("%d missed tail calls", n)
	}
	if fwd[0].Packets+fwd[1].Packets < 10000 || entered < flips/100 {
		t.Errorf("too little traffic crossed the flips to prove anything (%d packets, %d generations)", fwd[0].Packets+fwd[1].Packets, entered)
	}

	// Negative control: a bank holding stages tagged for another bank must be
	// counted, or the check above proves nothing.
	pipe.Settle()
	next := gen + 1
	if err := pipe.Prepare(next, sets[0][pipeline.Bank(next+1)].Slots()); err != nil {
		t.Fatal(err)
	}
	pipe.Flip(next)
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if err := l.Pods["a"].Echo(cctx, "tcp", srv, []byte("control")); err != nil {
		t.Fatal(err)
	}
	counters, _ = supervisor.DatapathCounters(maps.ByName[abi.MapMetrics])
	if n := counters[abi.AbiHpReasonHP_R_GEN_MISMATCH]; n[0].Packets+n[1].Packets == 0 {
		t.Error("mis-tagged bank went unnoticed: the check cannot fail")
	}
}
