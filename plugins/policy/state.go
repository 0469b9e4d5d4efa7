package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/netpol"
)

// State is what the policy plugin was told: endpoints with their labels,
// policies, and the identity numbers handed out. Labels and policy objects
// cannot live in the kernel maps, so the state is a file in the supervisor's
// state dir, written atomically after every change has reached the maps. The
// maps are never rebuilt from scratch at start: a restarted or upgraded
// plugin reads this file and reconciles, so enforcement never lapses.
type State struct {
	Endpoints  map[string]netpol.Endpoint            `json:"endpoints"`  // by IP
	Policies   map[string]networkingv1.NetworkPolicy `json:"policies"`   // by namespace/name
	Identities map[string]uint32                     `json:"identities"` // identity key -> label identity
	CIDRs      map[string]uint32                     `json:"cidrs"`      // prefix -> CIDR identity
	NextLabel  uint32                                `json:"next_label"`
	NextCIDR   uint32                                `json:"next_cidr"`
	NextEP     uint16                                `json:"next_ep"`
}

func newState() *State {
	return &State{
		Endpoints: map[string]netpol.Endpoint{}, Policies: map[string]networkingv1.NetworkPolicy{},
		Identities: map[string]uint32{}, CIDRs: map[string]uint32{},
		NextLabel: uint32(abi.AbiHpIdentityHP_ID_LABEL_MIN), NextCIDR: uint32(abi.AbiHpIdentityHP_ID_CIDR_MIN), NextEP: 1,
	}
}

// clone deep-copies s through JSON: a change is computed on a copy, so a
// refused one leaves s as it was.
func (s *State) clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // every field marshals
	}
	c := newState()
	if err := json.Unmarshal(b, c); err != nil {
		panic(err)
	}
	return c
}

func statePath(dir string) string { return filepath.Join(dir, "policy", "state.json") }

// loadState reads the state file; a missing one is an empty state
// (found=false).
func loadState(dir string) (st *State, found bool, err error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return newState(), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read policy state: %w", err)
	}
	s := newState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, false, fmt.Errorf("parse policy state %s: %w", statePath(dir), err)
	}
	return s, true, nil
}

// save writes the state atomically: write, fsync, rename, fsync the dir.
func (s *State) save(dir string) error {
	path := statePath(dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode policy state: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write policy state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write policy state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync policy state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close policy state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename policy state: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("open state dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state dir: %w", err)
	}
	return nil
}

// addEndpoint records e (validated), allocating its endpoint id and identity.
func (s *State) addEndpoint(e netpol.Endpoint) (netpol.Endpoint, error) {
	if old, ok := s.Endpoints[e.IP]; ok {
		e.ID = old.ID
	} else {
		id, err := s.allocEP()
		if err != nil {
			return e, err
		}
		e.ID = id
	}
	key := netpol.IdentityKey(e.Namespace, e.Labels)
	id, ok := s.Identities[key]
	if !ok {
		id = s.NextLabel
		if id >= uint32(abi.AbiHpIdentityHP_ID_CIDR_MIN) {
			return e, errors.New("label identities exhausted")
		}
		s.NextLabel++
		s.Identities[key] = id
	}
	e.Identity = id
	e.Allowed, e.Denied = 0, 0
	s.Endpoints[e.IP] = e
	return e, nil
}

// maxEP bounds endpoint ids by the verdict counter map (policy.c).
const maxEP = 4096

func (s *State) allocEP() (uint16, error) {
	used := map[uint16]bool{}
	for _, e := range s.Endpoints {
		used[e.ID] = true
	}
	for i := 0; i < maxEP; i++ {
		id := s.NextEP
		s.NextEP++
		if s.NextEP >= maxEP {
			s.NextEP = 1
		}
		if id != 0 && !used[id] {
			return id, nil
		}
	}
	return 0, fmt.Errorf("endpoint ids exhausted (%d endpoints)", len(s.Endpoints))
}

// syncCIDRs gives every prefix some policy names an identity and forgets
// those no policy names any more.
func (s *State) syncCIDRs() error {
	want := map[string]bool{}
	for _, np := range s.Policies {
		for _, b := range blocks(np) {
			want[b.CIDR.String()] = true
			for _, e := range b.Except {
				want[e.String()] = true
			}
		}
	}
	for p := range s.CIDRs {
		if !want[p] {
			delete(s.CIDRs, p)
		}
	}
	for p := range want {
		if _, ok := s.CIDRs[p]; !ok {
			if s.NextCIDR == uint32(abi.AbiHpIdentityHP_ID_SELECTED) {
				return errors.New("CIDR identities exhausted")
			}
			s.CIDRs[p] = s.NextCIDR
			s.NextCIDR++
		}
	}
	return nil
}

// gcIdentities forgets label identities no endpoint has.
func (s *State) gcIdentities() {
	used := map[uint32]bool{}
	for _, e := range s.Endpoints {
		used[e.Identity] = true
	}
	for k, id := range s.Identities {
		if !used[id] {
			delete(s.Identities, k)
		}
	}
}

// prefixes returns the CIDR identities by parsed prefix.
func (s *State) prefixes() map[netip.Prefix]uint32 {
	out := make(map[netip.Prefix]uint32, len(s.CIDRs))
	for p, id := range s.CIDRs {
		out[netip.MustParsePrefix(p)] = id
	}
	return out
}

func blocks(np networkingv1.NetworkPolicy) []netpol.Block {
	var out []netpol.Block
	add := func(peers []networkingv1.NetworkPolicyPeer) {
		for _, p := range peers {
			if p.IPBlock != nil {
				if b, err := netpol.ParseBlock(p.IPBlock); err == nil {
					out = append(out, b)
				}
			}
		}
	}
	for _, r := range np.Spec.Ingress {
		add(r.From)
	}
	for _, r := range np.Spec.Egress {
		add(r.To)
	}
	return out
}
