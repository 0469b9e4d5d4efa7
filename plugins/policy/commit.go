package policy

import (
	"net/netip"
	"slices"

	"github.com/hotpath/hotpath/core/abi"
)

// ipcacheOwned marks the ipcache entries the policy plugin writes.
const ipcacheOwned = uint16(abi.AbiHpIpcacheFlagHP_IPCACHE_F_POLICY)

// desiredIPCache is the ipcache for endpoints eps and CIDR identities
// prefixes: one entry per prefix, and a /32 per endpoint carrying both its
// label identity and the CIDR identity its address has under prefixes (so
// ipBlocks select endpoint addresses too).
func desiredIPCache(s *State, prefixes map[netip.Prefix]uint32) map[netip.Prefix]abi.AbiHpIpcacheVal {
	out := make(map[netip.Prefix]abi.AbiHpIpcacheVal, len(prefixes)+len(s.Endpoints))
	for p, id := range prefixes {
		out[p] = abi.AbiHpIpcacheVal{SecId: id, CidrId: id, Flags: ipcacheOwned}
	}
	for ip, e := range s.Endpoints {
		a := netip.MustParseAddr(ip)
		out[netip.PrefixFrom(a, 32)] = abi.AbiHpIpcacheVal{SecId: e.Identity, CidrId: cidrOf(a, prefixes), EpId: e.ID, Flags: ipcacheOwned}
	}
	return out
}

// cidrOf is the identity of the longest prefix covering a, as the LPM
// lookup would find it without a's endpoint entry; world if none does.
func cidrOf(a netip.Addr, prefixes map[netip.Prefix]uint32) uint32 {
	best, id := -1, uint32(abi.AbiHpIdentityHP_ID_WORLD)
	for p, pid := range prefixes {
		if p.Bits() > best && p.Contains(a) {
			best, id = p.Bits(), pid
		}
	}
	return id
}

func union(a, b map[netip.Prefix]uint32) map[netip.Prefix]uint32 {
	out := make(map[netip.Prefix]uint32, len(a)+len(b))
	for p, id := range a {
		out[p] = id
	}
	for p, id := range b {
		out[p] = id
	}
	return out
}

// commit moves the datapath from old to next without a moment of neither.
//
// Rules are checked against the peer's CIDR identity, the longest prefix of
// the ipcache covering its address. A rule table compiled against a prefix
// set U gives the same verdicts whatever subset T of U the ipcache holds, as
// long as T holds every cidr and except of the policies compiled (see
// inBlock). Likewise, until the ipcache is rewritten, endpoints carry their
// old label identities: the tables in force meanwhile also cover those
// (ghosts, judged by the labels they stand for). So, with U the union of old
// and next prefixes and G old's identities:
//  1. swap in old's policies compiled against U (verdicts unchanged);
//  2. add next's prefixes to the ipcache (verdicts still old's);
//  3. swap in next's policies compiled against U and G: the one atomic
//     change of verdicts;
//  4. write next's endpoints and drop prefixes next does not name;
//  5. swap in next compiled against its own prefixes and identities
//     (verdicts unchanged).
//
// Step 1 is skipped when no prefix is added, step 5 when nothing is left
// over; the rule table swap is one map update (ARRAY_OF_MAPS).
func (m *Maps) commit(old, next *State) (entries, swaps int, err error) {
	op, np := old.prefixes(), next.prefixes()
	u := union(op, np)
	ghosts := identities(old)
	grow := len(u) != len(op)
	leftover := len(u) != len(np) || !sameIDs(ghosts, identities(next))
	if grow {
		if err := m.swapRules(compile(old, u, nil)); err != nil {
			return 0, swaps, err
		}
		swaps++
		if err := m.writeIPCache(desiredIPCache(old, u), false); err != nil {
			return 0, swaps, err
		}
	}
	rules := compile(next, u, ghosts)
	if err := m.swapRules(rules); err != nil {
		return 0, swaps, err
	}
	swaps++
	if err := m.writeIPCache(desiredIPCache(next, np), true); err != nil {
		return 0, swaps, err
	}
	if leftover {
		rules = compile(next, np, nil)
		if err := m.swapRules(rules); err != nil {
			return 0, swaps, err
		}
		swaps++
	}
	return len(rules), swaps, nil
}

// sameIDs: both lists (sorted by identities) hold the same identities.
func sameIDs(a, b []identity) bool {
	return slices.EqualFunc(a, b, func(x, y identity) bool { return x.id == y.id })
}
