package supervisor

import (
	"fmt"
	"net/http"

	"github.com/hotpath/hotpath/core/abi"
)

// DatapathStatus is the answer of GET /v1/datapath and `hotpath datapath
// show -o json`: how packets end their pass through this node.
type DatapathStatus struct {
	// DirectRedirect is the flag as set in the config map, which the
	// forward stage reads: off when configured off or when the kernel
	// lacks a helper, whatever the config wished.
	DirectRedirect bool `json:"direct_redirect"`
	// Configured is what the config asked for.
	Configured bool `json:"direct_redirect_configured"`
	// Forward counts what the forward stage did, by entry.StatNames.
	Forward map[string]uint64 `json:"forward"`
	// NextHops are the entries of the next hop memory; Usable those the
	// forward stage would still use now. HopsOff: remembering is off
	// (the node has routing rules of its own).
	NextHops int  `json:"next_hops"`
	Usable   int  `json:"next_hops_usable"`
	HopsOff  bool `json:"next_hops_off"`
}

func (s *Supervisor) handleDatapath(w http.ResponseWriter, r *http.Request) {
	st, err := s.Datapath()
	reply(w, st, err)
}

// Datapath reads the forward stage's state back from the kernel.
func (s *Supervisor) Datapath() (DatapathStatus, error) {
	st := DatapathStatus{Configured: s.cfg.DirectRedirectOn()}
	if s.entry == nil || s.pipe == nil {
		return st, fmt.Errorf("datapath not loaded yet")
	}
	st.DirectRedirect = s.pipe.Flags()&uint32(abi.AbiHpConfigFlagHP_CFG_DIRECT_REDIRECT) != 0
	var err error
	if st.Forward, err = s.entry.ForwardStats(); err != nil {
		return st, err
	}
	if st.NextHops, st.Usable, err = s.entry.CountHops(); err != nil {
		return st, err
	}
	if st.HopsOff, err = s.entry.HopsOff(); err != nil {
		return st, err
	}
	return st, nil
}
