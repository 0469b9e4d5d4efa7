package e2e

import (
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/plugins/lb"
)

// sockGuard keeps the socket LB matrix honest. `make test` runs every test
// with per-packet LB only, except those under Modes, which run in both
// modes; `make test-socklb` runs everything again with HOTPATH_SOCKLB=on. A
// test that took its mode from HOTPATH_SOCKLB and still had connections
// translated at the socket depends on the mode, so `make test` would check
// it in one mode only: it fails here, naming Modes as the fix.
func (e *Env) sockGuard() {
	n, err := e.SockTranslations()
	if err != nil {
		e.T.Errorf("socket LB matrix: %v", err)
		return
	}
	if n > 0 {
		e.T.Errorf("socket LB translated %d connect/sendmsg calls in this test, which takes its mode from %s: "+
			"make test would run it with per-packet LB only; run it under e2e.Modes so both modes are tested", n, SockLBEnv)
	}
}

// SockTranslations is how many connect() and unconnected sendmsg() calls
// the lb plugin's socket programs have translated on this node so far (0
// when socket LB never ran here).
func (e *Env) SockTranslations() (uint64, error) {
	s, err := lb.ReadSockStats(pin.Layout{Root: e.Lab.BPFFS})
	if err != nil {
		return 0, err
	}
	return s[lb.SockConnect] + s[lb.SockSendmsg], nil
}
