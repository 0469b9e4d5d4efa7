package cluster

import (
	"sync"
	"time"
)

// Status is the sync's part of `hotpath status`.
type Status struct {
	Node      string    `json:"node"`
	State     string    `json:"state"`            // connecting, healthy or degraded
	Reason    string    `json:"reason,omitempty"` // why degraded
	Revision  int64     `json:"revision"`         // etcd revision last applied
	LastSync  time.Time `json:"last_sync"`        // last converged reconcile
	Services  int       `json:"services"`
	Endpoints int       `json:"endpoints"`
	Policies  int       `json:"policies"`
	Nodes     []string  `json:"nodes"`
	Routes    int       `json:"routes"`
	Changes   int       `json:"changes"` // datapath commands sent since start
	// Skipped names what could not be programmed and why (a plugin that
	// is not loaded, a refused key, a failed command).
	Skipped []string `json:"skipped,omitempty"`
}

// States of the sync.
const (
	StateConnecting = "connecting"
	StateHealthy    = "healthy"
	StateDegraded   = "degraded"
)

type statusBox struct {
	mu sync.Mutex
	st Status
}

func (b *statusBox) get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	st.Nodes = append([]string(nil), st.Nodes...)
	st.Skipped = append([]string(nil), st.Skipped...)
	return st
}

func (b *statusBox) update(f func(*Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.st)
}
