package lb

import (
	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/plugins/ct"
)

// withCT loads the lb stages and the ct stage for generation gen, the
// service path as the supervisor assembles it from the two plugins, for
// tests and benchmarks that drive the datapath without plugin processes.
// close releases this process's references.
func withCT(l pin.Layout, gen uint32, cfg Config) (progs map[abi.Slot]*ebpf.Program, close func(), err error) {
	st, err := LoadStages(l, gen, cfg, AllSlots)
	if err != nil {
		return nil, nil, err
	}
	ctProg, _, err := ct.LoadStage(l, gen, ct.DefaultConfig())
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	progs = map[abi.Slot]*ebpf.Program{abi.AbiHpSlotHP_SLOT_CT: ctProg}
	for s, p := range st.Progs {
		progs[s] = p
	}
	return progs, func() { st.Close(); ctProg.Close() }, nil
}
