package lb

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/plugins/lb/maglev"
)

// commit makes the maps hold service next (a new one when old is nil and
// next.val.SvcId is 0) with backends want. Everything that can be refused
// (ids, the Maglev build) is settled before the first map write. The writes
// are ordered so that a packet never meets a reference to something absent:
//
//	new backends -> rev-NAT (new service) -> slots -> Maglev table into
//	unused chunks -> service (count, algorithm, table offset and M) ->
//	surplus slots, old table's chunks (reused after a grace period), old
//	backends
//
// so the count grows only over filled slots and shrinks before slots go,
// and a removed backend disappears only once no slot or table names it.
func (s *Store) commit(old, next *service, want []services.Backend) error {
	var oldMembers []member
	var oldCount int
	var oldTable extent
	if old != nil {
		oldMembers, oldCount, oldTable = old.members, int(old.val.Count), tableOf(old.val)
	}
	st, err := s.maps.readState()
	if err != nil {
		return err
	}
	if next.val.SvcId == 0 {
		id, err := s.allocService(&st)
		if err != nil {
			return err
		}
		next.val.SvcId, next.val.RevNatIndex = id, uint16(id)
	}
	id := next.val.SvcId

	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b services.Backend) int { return a.Addr.Compare(b.Addr) })
	members := make([]member, len(want))
	var fresh []int
	for i, b := range want {
		be := abi.LB4Backend{Address: addrU32(b.Addr.Addr()), Port: htons(b.Addr.Port()), Proto: uint8(next.vip.Proto), Weight: b.Weight}
		members[i].be = be
		if m, ok := memberAt(oldMembers, b.Addr); ok {
			members[i].id = m.id
		} else {
			fresh = append(fresh, i)
		}
	}
	for _, i := range fresh {
		if members[i].id, err = s.allocBackend(&st, members); err != nil {
			return err
		}
	}

	weights := make([]uint16, len(members))
	for i, m := range members {
		weights[i] = m.be.Weight
	}
	fill := FillSlots(weights, MaxSlots)

	var table []uint32
	start := time.Now()
	if services.Algorithm(next.val.Algorithm) == services.Maglev && len(members) > 0 {
		table = next.prebuilt.ids(members, next.val.MaglevSize)
	}
	if services.Algorithm(next.val.Algorithm) == services.Maglev && len(members) > 0 && table == nil {
		mb := make([]maglev.Backend, len(members))
		for i, m := range members {
			mb[i] = maglev.Backend{ID: m.id, Key: m.backend().Key(), Weight: uint32(m.be.Weight)}
		}
		if table, err = maglev.Build(mb, next.val.MaglevSize, s.seed); err != nil {
			return fmt.Errorf("build maglev table: %w", err)
		}
	}

	var sp *space
	var newTable extent
	if table != nil || oldTable.n > 0 {
		if sp, err = s.tables(); err != nil {
			return err
		}
	}
	if table != nil {
		newTable.n = chunksFor(next.val.MaglevSize)
		if newTable.off, err = sp.alloc(newTable.n); err != nil {
			return err
		}
	}
	published := false
	defer func() {
		if newTable.n > 0 && !published {
			sp.unalloc(newTable.off, newTable.n) // no service value named it
		}
	}()

	// From here on the kernel changes.
	if err := s.maps.writeState(st); err != nil {
		return err
	}
	// Every write below pushes its inverse, so a write the kernel refuses
	// (a full map) takes back what this commit did before it.
	var undo undoLog
	defer undo.drop()
	fail := func(err error) error {
		if uerr := undo.run(); uerr != nil {
			return fmt.Errorf("%w (undo: %v)", err, uerr)
		}
		return err
	}
	for _, m := range members {
		prev, existed := memberByID(oldMembers, m.id)
		if existed && prev.be == m.be {
			continue
		}
		flag := ebpf.UpdateNoExist
		if existed {
			flag = ebpf.UpdateExist // a weight change: same id, flows stay
		}
		if err := s.maps.Backends.Update(m.id, m.be, flag); err != nil {
			return fail(fmt.Errorf("write backend %s: %w", m.backend().Addr, err))
		}
		bid := m.id
		if existed {
			undo.push(func() error { return s.maps.Backends.Update(bid, prev.be, ebpf.UpdateExist) })
		} else {
			undo.push(func() error { return s.maps.Backends.Delete(bid) })
		}
	}
	if old == nil {
		rn := abi.LB4RevNat{Address: addrU32(next.vip.Addr), Port: htons(next.vip.Port)}
		if err := s.maps.RevNat.Put(uint16(id), rn); err != nil {
			return fail(fmt.Errorf("write rev-nat %d: %w", id, err))
		}
		undo.push(func() error { return s.maps.RevNat.Delete(uint16(id)) })
	}
	for slot, i := range fill {
		key := abi.LB4SlotKey{SvcId: id, Slot: uint32(slot)}
		if err := s.undoSlot(&undo, key); err != nil {
			return fail(err)
		}
		if err := s.maps.Slots.Put(key, members[i].id); err != nil {
			return fail(fmt.Errorf("write slot %d: %w", slot, err))
		}
	}
	next.val.MaglevOffset = 0
	if table != nil {
		// Unused chunks: no packet reads them before the service value
		// below names them, so nothing to undo in the kernel.
		if err := s.maps.writeTable(newTable.off, table); err != nil {
			return fail(err)
		}
		s.Metrics.tableBuilt(time.Since(start))
		next.val.MaglevOffset = newTable.off
	}
	next.val.Count = uint16(len(fill))
	if err := s.maps.Services.Put(keyOf(next.vip), next.val); err != nil {
		return fail(fmt.Errorf("write service: %w", err))
	}
	undo.done()
	published = true
	if oldTable.n > 0 {
		sp.release(oldTable.off, oldTable.n)
	}

	var errs []error
	for slot := len(fill); slot < oldCount; slot++ {
		errs = append(errs, ignoreMissing(s.maps.Slots.Delete(abi.LB4SlotKey{SvcId: id, Slot: uint32(slot)})))
	}
	for _, m := range oldMembers {
		if _, kept := memberByID(members, m.id); !kept {
			errs = append(errs, ignoreMissing(s.maps.Backends.Delete(m.id)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up: %w", err)
	}
	return nil
}

func memberByID(ms []member, id uint32) (member, bool) {
	for _, m := range ms {
		if m.id == id {
			return m, true
		}
	}
	return member{}, false
}

// maxSvcID: a service id doubles as its rev_nat_index, 16 bits in CT entries.
const maxSvcID = 65535

// allocService returns the next free service id after st.NextSvc. A
// service's rev-NAT entry marks its id as used from creation to deletion.
func (s *Store) allocService(st *state) (uint32, error) {
	id := st.NextSvc
	for range maxSvcID {
		if id == 0 || id > maxSvcID {
			id = 1
		}
		var rn abi.LB4RevNat
		err := s.maps.RevNat.Lookup(uint16(id), &rn)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			st.NextSvc = id + 1
			return id, nil
		}
		if err != nil {
			return 0, fmt.Errorf("allocate service id: %w", err)
		}
		id++
	}
	return 0, fmt.Errorf("allocate service id: all %d in use", maxSvcID)
}

// allocBackend returns the next backend id after st.NextBackend that is
// neither in lb4_backends nor taken by taken.
func (s *Store) allocBackend(st *state, taken []member) (uint32, error) {
	id := st.NextBackend
	for range 1 << 18 { // more than lb4_backends can hold
		if id == 0 {
			id = 1
		}
		if _, dup := memberByID(taken, id); !dup {
			var be abi.LB4Backend
			err := s.maps.Backends.Lookup(id, &be)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				st.NextBackend = id + 1
				return id, nil
			}
			if err != nil {
				return 0, fmt.Errorf("allocate backend id: %w", err)
			}
		}
		id++
	}
	return 0, fmt.Errorf("allocate backend id: no free id")
}

// dropAffinity deletes the session-affinity entries of a service.
func (s *Store) dropAffinity(svcID uint32) error {
	var keys []abi.LB4AffKey
	var k abi.LB4AffKey
	var v abi.LB4Affinity
	it := s.maps.Affinity.Iterate()
	for it.Next(&k, &v) {
		if k.SvcId == svcID {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("scan affinity: %w", err)
	}
	for _, k := range keys {
		if err := ignoreMissing(s.maps.Affinity.Delete(k)); err != nil {
			return fmt.Errorf("delete affinity: %w", err)
		}
	}
	return nil
}
