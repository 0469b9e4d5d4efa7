package host

import (
	"testing"
	"time"
)

// fakeClock advances only when told to.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBackoff(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := Backoff{now: clk.now}
	// Each instance dies one second after its restart.
	want := []time.Duration{
		200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond,
		12800 * time.Millisecond, 25600 * time.Millisecond, 30 * time.Second, 30 * time.Second,
	}
	for i, w := range want {
		got := b.Next()
		if got != w {
			t.Fatalf("restart %d: got %v, want %v", i, got, w)
		}
		clk.t = clk.t.Add(got + time.Second)
	}
	// Ran for just under a minute after its restart: keep backing off.
	clk.t = clk.t.Add(58 * time.Second)
	d := b.Next()
	if d != 30*time.Second {
		t.Fatalf("after 59s up: got %v, want 30s", d)
	}
	// Ran for a minute: start over.
	clk.t = clk.t.Add(d + time.Minute)
	if got := b.Next(); got != 200*time.Millisecond {
		t.Fatalf("after 60s up: got %v, want 200ms", got)
	}
	clk.t = clk.t.Add(300 * time.Millisecond)
	if got := b.Next(); got != 400*time.Millisecond {
		t.Fatalf("after reset: got %v, want 400ms", got)
	}
}

func TestBackoffCustom(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := Backoff{Initial: time.Second, Max: 3 * time.Second, Reset: 10 * time.Second, now: clk.now}
	for i, w := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		got := b.Next()
		if got != w {
			t.Fatalf("restart %d: got %v, want %v", i, got, w)
		}
		clk.t = clk.t.Add(got)
	}
	clk.t = clk.t.Add(10 * time.Second)
	if got := b.Next(); got != time.Second {
		t.Fatalf("after reset: got %v, want 1s", got)
	}
}

// The real clock is used when none is injected.
func TestBackoffRealClock(t *testing.T) {
	var b Backoff
	if a, c := b.Next(), b.Next(); a != 200*time.Millisecond || c != 400*time.Millisecond {
		t.Fatalf("got %v, %v; want 200ms, 400ms", a, c)
	}
}
