package bench

import (
	"fmt"

	"github.com/hotpath/hotpath/internal/bare"
)

// setupBare attaches internal/bare in the node: one lookup and
// bpf_redirect_peer per packet, no conntrack, no translation. Between
// plain routing and hotpath it shows what the TCX hook and the redirect
// give any eBPF datapath on this machine, so that hotpath's distance to it
// is what its stages cost.
func setupBare(_ *Context, e *labEnv, _ int) error {
	f, err := bare.ForLab(e.lab)
	if err != nil {
		return fmt.Errorf("bare forwarder: %w", err)
	}
	e.onClose(func() { f.Close() })
	e.connAddr = e.directAddrs()
	return nil
}
