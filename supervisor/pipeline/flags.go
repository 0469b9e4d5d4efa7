package pipeline

import (
	"sync/atomic"
	"unsafe"

	"github.com/hotpath/hotpath/core/abi"
)

var offFlags = unsafe.Offsetof(abi.Config{}.Flags)

// SetFlags sets and clears bits of hp_config.flags with one atomic store per
// attempt, so the datapath never sees a torn word and other bits survive.
func (p *Pipeline) SetFlags(set, clear uint32) {
	w := p.word(offFlags)
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&^clear|set) {
			return
		}
	}
}

// Flags reads hp_config.flags.
func (p *Pipeline) Flags() uint32 { return atomic.LoadUint32(p.word(offFlags)) }
