package dptest

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/plugins/lb"
)

// ServiceStages loads for generation 1 what the supervisor assembles from
// the lb and ct plugins (lb with cfg, ct with its defaults): the service path
// for tests and fuzzing that drive the datapath without plugin processes. The
// test releases them.
func ServiceStages(t testing.TB, l pin.Layout, cfg lb.Config) map[abi.Slot]*ebpf.Program {
	t.Helper()
	st, err := lb.LoadStages(l, 1, cfg, lb.AllSlots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ctProg, _, err := ct.LoadStage(l, 1, ct.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctProg.Close() })
	progs := map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: ctProg}
	for s, p := range st.Progs {
		progs[s] = p
	}
	return progs
}
