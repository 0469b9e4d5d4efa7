package bench

import (
	"testing"
	"time"
)

// TestCPUBusyCounts: /proc/stat's busy time is read, and spinning a CPU
// for 300 ms moves it by about that much.
func TestCPUBusyCounts(t *testing.T) {
	a, err := cpuBusy()
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
	}
	b, err := cpuBusy()
	if err != nil {
		t.Fatal(err)
	}
	if a <= 0 || b-a < 0.2 {
		t.Fatalf("busy %.2f s then %.2f s after spinning 0.3 s: want at least 0.2 s more", a, b)
	}
}
