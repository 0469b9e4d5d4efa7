package ctmap

import (
	"time"

	"golang.org/x/sys/unix"
)

// monotonicCoarse reads CLOCK_MONOTONIC_COARSE, the clock behind
// bpf_ktime_get_coarse_ns, so GC and the datapath agree on "now".
func monotonicCoarse() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		panic("clock_gettime(CLOCK_MONOTONIC_COARSE): " + err.Error())
	}
	return time.Duration(ts.Nano())
}

// Now is the datapath's clock in whole seconds.
func Now() uint32 { return uint32(monotonicCoarse() / time.Second) }
