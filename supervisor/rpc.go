package supervisor

import (
	"context"
	"time"
)

// Deadlines of the calls into a plugin. Every call has one: a plugin that
// hangs costs its caller this long at most, never the supervisor.
const (
	loadTimeout       = 2 * time.Minute // the verifier, on a loaded node
	activateTimeout   = 30 * time.Second
	deactivateTimeout = 30 * time.Second // waits out a running GC pass
	healthTimeout     = 2 * time.Second
	invokeTimeout     = 2 * time.Minute // a bulk service apply
)

// rpcContext bounds one plugin call by d, and by ctx.
func rpcContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
