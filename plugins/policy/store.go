package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/hotpath/hotpath/core/netpol"
)

// Store applies endpoint and policy changes: compute the next state on a
// copy, commit it to the maps, then save it. Changes are serialised.
type Store struct {
	mu    sync.Mutex
	maps  *Maps
	dir   string // state dir
	state *State
}

// OpenStore reads the saved state under dir and reconciles the maps with it
// (same verdicts as before when the maps already match: the rule table is
// swapped whole, never emptied). Without a state file it refuses to replace
// a rule table that is not empty: that is a state dir lost or changed, and
// reconciling would drop every rule in force.
func OpenStore(maps *Maps, dir string) (*Store, error) {
	st, found, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	if !found {
		installed, err := maps.installedRules()
		if err != nil {
			return nil, err
		}
		if len(installed) > 0 {
			return nil, fmt.Errorf("policy maps hold %d rule entries but there is no state at %s (another --state-dir?): leaving them in force, refusing to replace them", len(installed), statePath(dir))
		}
	}
	s := &Store{maps: maps, dir: dir, state: st}
	if _, _, err := maps.commit(st, st); err != nil {
		return nil, fmt.Errorf("reconcile policy maps: %w", err)
	}
	return s, nil
}

// change runs fn on a copy of the state and commits the result.
func (s *Store) change(fn func(next *State) error) (entries, swaps int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.state.clone()
	if err := fn(next); err != nil {
		return 0, 0, err
	}
	next.gcIdentities()
	if err := next.syncCIDRs(); err != nil {
		return 0, 0, err
	}
	if entries, swaps, err = s.maps.commit(s.state, next); err != nil {
		// Put back what the datapath had; the error is the first one.
		if _, _, rerr := s.maps.commit(next, s.state); rerr != nil {
			err = fmt.Errorf("%w (and restoring the previous rules: %v)", err, rerr)
		}
		return 0, swaps, err
	}
	if err := next.save(s.dir); err != nil {
		return entries, swaps, err
	}
	s.state = next
	return entries, swaps, nil
}

// AddEndpoint adds or replaces an endpoint.
func (s *Store) AddEndpoint(e netpol.Endpoint) (netpol.Endpoint, error) {
	if err := e.Validate(); err != nil {
		return e, err
	}
	var out netpol.Endpoint
	_, _, err := s.change(func(next *State) error {
		var err error
		out, err = next.addEndpoint(e)
		return err
	})
	return out, err
}

// DelEndpoint removes an endpoint.
func (s *Store) DelEndpoint(ip string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("endpoint %q: want an IPv4 address", ip)
	}
	_, _, err = s.change(func(next *State) error {
		if _, ok := next.Endpoints[a.String()]; !ok {
			return fmt.Errorf("endpoint %s: not found", a)
		}
		delete(next.Endpoints, a.String())
		return nil
	})
	return err
}

// Endpoints lists endpoints with their verdict counters.
func (s *Store) Endpoints() ([]netpol.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netpol.Endpoint, 0, len(s.state.Endpoints))
	for _, e := range s.state.Endpoints {
		a, d, err := s.maps.verdicts(e.ID)
		if err != nil {
			return nil, err
		}
		e.Allowed, e.Denied = a, d
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		return netip.MustParseAddr(out[i].IP).Less(netip.MustParseAddr(out[j].IP))
	})
	return out, nil
}

// Apply adds or replaces policies, all in one atomic rule table change.
func (s *Store) Apply(nps []networkingv1.NetworkPolicy) (netpol.ApplyResult, error) {
	start := time.Now()
	res := netpol.ApplyResult{Applied: []string{}}
	for i := range nps {
		if nps[i].Namespace == "" {
			nps[i].Namespace = "default"
		}
		if err := netpol.Validate(&nps[i]); err != nil {
			return res, fmt.Errorf("policy %d (%s/%s): %w", i+1, nps[i].Namespace, nps[i].Name, err)
		}
	}
	entries, swaps, err := s.change(func(next *State) error {
		for _, np := range nps {
			ref := np.Namespace + "/" + np.Name
			next.Policies[ref] = np
			res.Applied = append(res.Applied, ref)
		}
		return nil
	})
	if err != nil {
		return netpol.ApplyResult{}, err
	}
	res.Entries, res.Swaps, res.Duration = entries, swaps, time.Since(start).String()
	return res, nil
}

// Delete removes a policy.
func (s *Store) Delete(ref netpol.DeleteArgs) error {
	_, _, err := s.change(func(next *State) error {
		key := ref.Namespace + "/" + ref.Name
		if _, ok := next.Policies[key]; !ok {
			return fmt.Errorf("policy %s: not found", key)
		}
		delete(next.Policies, key)
		return nil
	})
	return err
}

// Policies lists policies and the endpoints each selects now.
func (s *Store) Policies() []netpol.PolicyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []netpol.PolicyInfo{}
	for _, np := range s.state.Policies {
		sel := mustSelector(&np.Spec.PodSelector)
		in, eg := policyTypes(np)
		pi := netpol.PolicyInfo{
			Namespace: np.Namespace, Name: np.Name, PodSelector: sel.String(),
			Ingress: len(np.Spec.Ingress), Egress: len(np.Spec.Egress), Selected: []string{},
		}
		if pi.PodSelector == "" {
			pi.PodSelector = "(all pods)"
		}
		if in {
			pi.PolicyTypes = append(pi.PolicyTypes, "Ingress")
		}
		if eg {
			pi.PolicyTypes = append(pi.PolicyTypes, "Egress")
		}
		for ip, e := range s.state.Endpoints {
			if e.Namespace == np.Namespace && sel.Matches(labels.Set(e.Labels)) {
				pi.Selected = append(pi.Selected, ip)
			}
		}
		sort.Strings(pi.Selected)
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

// verdicts sums an endpoint's allowed and denied packets over CPUs and
// directions.
func (m *Maps) verdicts(ep uint16) (allowed, denied uint64, err error) {
	for i := uint32(0); i < 4; i++ {
		var per []struct{ Packets, Bytes uint64 }
		if err := m.Verdicts.Lookup(uint32(ep)*4+i, &per); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return 0, 0, fmt.Errorf("read verdicts of endpoint %d: %w", ep, err)
		}
		for _, p := range per {
			if i/2 == 0 {
				allowed += p.Packets
			} else {
				denied += p.Packets
			}
		}
	}
	return allowed, denied, nil
}
