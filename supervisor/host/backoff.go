package host

import "time"

// Backoff spaces out the restarts of a crashing plugin: the first restart
// comes after Initial, each further one waits twice as long up to Max, and
// once an instance has run for Reset since its restart the sequence starts
// over. The zero value uses 200ms, 30s and 60s.
//
// Next measures the run time itself, from the end of the previous delay to
// the next call, so a restart loop needs no bookkeeping: wait for the
// instance to exit, sleep Next(), start a new one.
type Backoff struct {
	Initial, Max, Reset time.Duration

	next    time.Duration
	resumed time.Time        // when the previous delay ended
	now     func() time.Time // for tests
}

// Next returns how long to wait before the next restart.
func (b *Backoff) Next() time.Duration {
	initial, max, reset := b.Initial, b.Max, b.Reset
	if initial <= 0 {
		initial = 200 * time.Millisecond
	}
	if max <= 0 {
		max = 30 * time.Second
	}
	if reset <= 0 {
		reset = time.Minute
	}
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	if b.next == 0 || now.Sub(b.resumed) >= reset {
		b.next = initial
	}
	d := min(b.next, max)
	b.next = min(2*d, max)
	b.resumed = now.Add(d)
	return d
}
