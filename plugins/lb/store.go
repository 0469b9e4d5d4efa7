package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/services"
)

// ErrNotFound is returned for a service or backend that does not exist.
var ErrNotFound = errors.New("not found")

// Store changes services in the kernel maps, which are the only record of
// them: nothing is cached, so a restarted plugin (or one of another version)
// sees exactly what the datapath uses. Its methods are safe for concurrent
// use; changes are serialised.
type Store struct {
	// Metrics, when set, records table builds.
	Metrics *Metrics

	mu     sync.Mutex
	maps   *Maps
	space  *space // lb4_maglev's allocator, read from the maps on first use
	seed   uint32
	defAlg services.Algorithm
	defM   uint32
}

// NewStore returns a store over maps that builds tables with cfg's seed and
// gives new services cfg's defaults.
func NewStore(maps *Maps, cfg Config) *Store {
	return &Store{maps: maps, seed: cfg.MaglevSeed, defAlg: cfg.algorithm(), defM: cfg.MaglevTableSize}
}

// service is one service as the maps hold it.
type service struct {
	val     abi.LB4Service
	vip     services.VIP
	members []member // ordered by address
	// prebuilt is its Maglev table built ahead by a bulk apply, if any.
	prebuilt positions
}

// member is one backend of a service with its id.
type member struct {
	id uint32
	be abi.LB4Backend
}

func (m member) backend() services.Backend { return backendOf(m.be) }

// get reads the service at vip.
func (s *Store) get(vip services.VIP) (*service, error) {
	var val abi.LB4Service
	if err := s.maps.Services.Lookup(keyOf(vip), &val); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("service %s: %w", vip, ErrNotFound)
		}
		return nil, fmt.Errorf("read service %s: %w", vip, err)
	}
	ms, err := s.members(val)
	if err != nil {
		return nil, fmt.Errorf("read service %s: %w", vip, err)
	}
	return &service{val: val, vip: vip, members: ms}, nil
}

// members reads a service's backends back from its random-selection slots,
// where every backend has at least one.
func (s *Store) members(val abi.LB4Service) ([]member, error) {
	seen := map[uint32]bool{}
	var out []member
	for slot := uint32(0); slot < uint32(val.Count); slot++ {
		var id uint32
		if err := s.maps.Slots.Lookup(abi.LB4SlotKey{SvcId: val.SvcId, Slot: slot}, &id); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, fmt.Errorf("read slot %d: %w", slot, err)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		var be abi.LB4Backend
		if err := s.maps.Backends.Lookup(id, &be); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, fmt.Errorf("read backend %d: %w", id, err)
		}
		out = append(out, member{id: id, be: be})
	}
	sortMembers(out)
	return out, nil
}

func sortMembers(ms []member) {
	slices.SortFunc(ms, func(a, b member) int { return backendOf(a.be).Addr.Compare(backendOf(b.be).Addr) })
}

// Add creates a service.
func (s *Store) Add(spec services.ServiceSpec) (services.ServiceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(spec)
}

// withDefaults fills in the store's algorithm and table size where spec
// names none.
func (s *Store) withDefaults(spec services.ServiceSpec) services.ServiceSpec {
	if spec.Algorithm == 0 {
		spec.Algorithm = s.defAlg
	}
	if spec.TableSize == 0 {
		spec.TableSize = s.defM
	}
	return spec
}

func (s *Store) add(spec services.ServiceSpec) (services.ServiceInfo, error) {
	if err := s.create(spec, nil); err != nil {
		return services.ServiceInfo{}, err
	}
	svc, err := s.get(spec.VIP)
	if err != nil {
		return services.ServiceInfo{}, err
	}
	return svc.info(), nil
}

// create writes a new service, with its Maglev table built ahead (pre) or
// not (nil).
func (s *Store) create(spec services.ServiceSpec, pre positions) error {
	spec = s.withDefaults(spec)
	if spec.Algorithm == services.Maglev && len(spec.Backends) > int(spec.TableSize) {
		return fmt.Errorf("add service %s: %d backends do not fit a maglev table of %d", spec.VIP, len(spec.Backends), spec.TableSize)
	}
	var val abi.LB4Service
	switch err := s.maps.Services.Lookup(keyOf(spec.VIP), &val); {
	case err == nil:
		return fmt.Errorf("add service %s: exists (id %d); change it with backend add|del or set-algorithm", spec.VIP, val.SvcId)
	case !errors.Is(err, ebpf.ErrKeyNotExist):
		return fmt.Errorf("add service %s: %w", spec.VIP, err)
	}
	// commit allocates the id.
	val = abi.LB4Service{
		Algorithm:       uint8(spec.Algorithm),
		AffinityTimeout: spec.AffinityTimeout, MaglevSize: spec.TableSize,
	}
	if spec.AffinityTimeout > 0 {
		val.Flags |= uint8(abi.AbiHpLbFlagHP_LB_F_AFFINITY)
	}
	if err := s.commit(nil, &service{val: val, vip: spec.VIP, prebuilt: pre}, spec.Backends); err != nil {
		return fmt.Errorf("add service %s: %w", spec.VIP, err)
	}
	return nil
}

// Del removes a service. Its flows lose translation; their CT entries
// expire as usual.
func (s *Store) Del(vip services.VIP) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.del(vip)
}

func (s *Store) del(vip services.VIP) error {
	svc, err := s.get(vip)
	if err != nil {
		return fmt.Errorf("delete service: %w", err)
	}
	id := svc.val.SvcId
	// Stop new lookups first; everything below is unreachable afterwards.
	if err := s.maps.Services.Delete(keyOf(vip)); err != nil {
		return fmt.Errorf("delete service %s: %w", vip, err)
	}
	var errs []error
	if e := tableOf(svc.val); e.n > 0 && s.space != nil {
		s.space.release(e.off, e.n) // (not read yet: it will find the region free)
	}
	errs = append(errs, s.dropAffinity(id))
	for slot := uint32(0); slot < uint32(svc.val.Count); slot++ {
		errs = append(errs, ignoreMissing(s.maps.Slots.Delete(abi.LB4SlotKey{SvcId: id, Slot: slot})))
	}
	for _, m := range svc.members {
		errs = append(errs, ignoreMissing(s.maps.Backends.Delete(m.id)))
	}
	// The rev-NAT entry goes last: it marks the id as used.
	errs = append(errs, ignoreMissing(s.maps.RevNat.Delete(uint16(id))))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete service %s: %w", vip, err)
	}
	return nil
}

// SetAlgorithm switches a service's algorithm (and, with m != 0, its table
// size). Flows with a CT_SERVICE entry keep their backend. Setting maglev
// again rebuilds the table.
func (s *Store) SetAlgorithm(vip services.VIP, alg services.Algorithm, m uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, err := s.get(vip)
	if err != nil {
		return fmt.Errorf("set algorithm: %w", err)
	}
	next := *svc
	next.val.Algorithm = uint8(alg)
	if m != 0 {
		next.val.MaglevSize = m
	}
	if alg == services.Maglev && len(svc.members) > int(next.val.MaglevSize) {
		return fmt.Errorf("set algorithm of %s: %d backends do not fit a maglev table of %d", vip, len(svc.members), next.val.MaglevSize)
	}
	if err := s.commit(svc, &next, backendsOf(svc.members)); err != nil {
		return fmt.Errorf("set algorithm of %s: %w", vip, err)
	}
	return nil
}

// AddBackend adds b to a service, or changes the weight of the backend at
// b's address.
func (s *Store) AddBackend(vip services.VIP, b services.Backend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, err := s.get(vip)
	if err != nil {
		return fmt.Errorf("add backend %s: %w", b.Addr, err)
	}
	want := backendsOf(svc.members)
	if i := slices.IndexFunc(want, func(o services.Backend) bool { return o.Addr == b.Addr }); i >= 0 {
		if want[i].Weight == b.Weight {
			return nil
		}
		want[i].Weight = b.Weight
	} else {
		want = append(want, b)
	}
	if len(want) > services.MaxBackends {
		return fmt.Errorf("add backend %s to %s: service has %d backends, the most there can be", b.Addr, vip, services.MaxBackends)
	}
	if services.Algorithm(svc.val.Algorithm) == services.Maglev && len(want) > int(svc.val.MaglevSize) {
		return fmt.Errorf("add backend %s to %s: %d backends do not fit a maglev table of %d", b.Addr, vip, len(want), svc.val.MaglevSize)
	}
	if err := s.commit(svc, svc, want); err != nil {
		return fmt.Errorf("add backend %s to %s: %w", b.Addr, vip, err)
	}
	return nil
}

// DelBackend removes the backend at b's address from a service. Its flows
// are moved to another backend by the datapath on their next packet.
func (s *Store) DelBackend(vip services.VIP, b services.Backend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, err := s.get(vip)
	if err != nil {
		return fmt.Errorf("delete backend %s: %w", b.Addr, err)
	}
	want := backendsOf(svc.members)
	i := slices.IndexFunc(want, func(o services.Backend) bool { return o.Addr == b.Addr })
	if i < 0 {
		return fmt.Errorf("delete backend %s from %s: %w", b.Addr, vip, ErrNotFound)
	}
	want = slices.Delete(want, i, i+1)
	if err := s.commit(svc, svc, want); err != nil {
		return fmt.Errorf("delete backend %s from %s: %w", b.Addr, vip, err)
	}
	return nil
}

// List returns every service, ordered by VIP.
func (s *Store) List() ([]services.ServiceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs, err := s.all()
	if err != nil {
		return nil, err
	}
	out := make([]services.ServiceInfo, 0, len(svcs))
	for _, svc := range svcs {
		out = append(out, svc.info())
	}
	return out, nil
}

func (s *Store) all() ([]*service, error) {
	var out []*service
	var k abi.LB4Key
	var v abi.LB4Service
	it := s.maps.Services.Iterate()
	for it.Next(&k, &v) {
		ms, err := s.members(v)
		if err != nil {
			return nil, fmt.Errorf("list services: %s: %w", vipOf(k), err)
		}
		out = append(out, &service{val: v, vip: vipOf(k), members: ms})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	slices.SortFunc(out, func(a, b *service) int {
		if c := a.vip.Addr.Compare(b.vip.Addr); c != 0 {
			return c
		}
		if a.vip.Port != b.vip.Port {
			return int(a.vip.Port) - int(b.vip.Port)
		}
		return int(a.vip.Proto) - int(b.vip.Proto)
	})
	return out, nil
}

func (svc *service) info() services.ServiceInfo {
	si := services.ServiceInfo{
		VIP: svc.vip.String(), ID: svc.val.SvcId, Algorithm: services.Algorithm(svc.val.Algorithm).String(),
		MaglevTableSize: svc.val.MaglevSize, AffinityTimeout: svc.val.AffinityTimeout,
		Backends: []services.BackendInfo{},
	}
	for _, m := range svc.members {
		si.Backends = append(si.Backends, services.BackendInfo{Address: m.backend().Addr.String(), Weight: m.be.Weight, ID: m.id})
	}
	return si
}

func backendsOf(ms []member) []services.Backend {
	out := make([]services.Backend, len(ms))
	for i, m := range ms {
		out[i] = m.backend()
	}
	return out
}

// Reseed rebuilds every Maglev table when they were built with another seed
// than the store's, so all nodes configured alike hold the same tables.
func (s *Store) Reseed() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.maps.readState()
	if err != nil {
		return 0, err
	}
	if st.SeedSet != 0 && st.Seed == s.seed {
		return 0, nil
	}
	svcs, err := s.all()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, svc := range svcs {
		if services.Algorithm(svc.val.Algorithm) != services.Maglev || len(svc.members) == 0 {
			continue
		}
		if err := s.commit(svc, svc, backendsOf(svc.members)); err != nil {
			return n, fmt.Errorf("rebuild table of %s: %w", svc.vip, err)
		}
		n++
	}
	if st, err = s.maps.readState(); err != nil {
		return n, err
	}
	st.Seed, st.SeedSet = s.seed, 1
	return n, s.maps.writeState(st)
}

func ignoreMissing(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// netip.AddrPort of a member, for lookups by address.
func memberAt(ms []member, a netip.AddrPort) (member, bool) {
	for _, m := range ms {
		if m.backend().Addr == a {
			return m, true
		}
	}
	return member{}, false
}
