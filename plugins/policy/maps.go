package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
)

// VerdictsMap is the plugin-private map of verdict counters, pinned under
// layout.PluginPrivate("policy") so counters outlive generations and
// restarts.
const VerdictsMap = "verdicts"

// Maps are the policy plugin's open maps.
type Maps struct {
	IPCache  *ebpf.Map // shared LPM: prefix -> identities
	Policy   *ebpf.Map // shared ARRAY_OF_MAPS: slot 0 -> rule table
	Verdicts *ebpf.Map // private PERCPU_ARRAY
	inner    *ebpf.MapSpec
}

// OpenMaps opens the shared maps pinned under l and opens or creates the
// private verdict counters.
func OpenMaps(l pin.Layout) (*Maps, error) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return nil, err
	}
	m := &Maps{inner: specs[abi.AbiMapPolicy].InnerMap}
	for _, x := range []struct {
		name string
		dst  **ebpf.Map
	}{{abi.AbiMapIpcache, &m.IPCache}, {abi.AbiMapPolicy, &m.Policy}} {
		mp, err := ebpf.LoadPinnedMap(l.Shared(x.name), nil)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("open shared map %s: %w", x.name, err)
		}
		if err := pin.Check(specs[x.name], mp); err != nil {
			mp.Close()
			m.Close()
			return nil, fmt.Errorf("shared map %s: %w", x.name, err)
		}
		*x.dst = mp
	}
	if m.Verdicts, err = openVerdicts(l); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func openVerdicts(l pin.Layout) (*ebpf.Map, error) {
	spec, err := loadPolicy()
	if err != nil {
		return nil, fmt.Errorf("load policy spec: %w", err)
	}
	path := filepath.Join(l.PluginPrivate("policy"), VerdictsMap)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	m, _, err := pin.OpenOrCreate(spec.Maps["policy_verdicts"], path)
	return m, err
}

// Close releases this process's references; pins stay.
func (m *Maps) Close() {
	for _, x := range []*ebpf.Map{m.IPCache, m.Policy, m.Verdicts} {
		if x != nil {
			x.Close()
		}
	}
}

// swapRules builds a fresh rule table holding exactly rules and puts it in
// the policy map with one update: a packet sees either the whole old table
// or the whole new one.
func (m *Maps) swapRules(rules Rules) error {
	spec := m.inner.Copy()
	spec.Name = "hp_policy_rules"
	inner, err := ebpf.NewMap(spec)
	if err != nil {
		return fmt.Errorf("create rule table: %w", err)
	}
	defer inner.Close() // the outer map keeps it
	if len(rules) > int(spec.MaxEntries) {
		return fmt.Errorf("rule table: %d entries, room for %d", len(rules), spec.MaxEntries)
	}
	keys := make([]abi.AbiHpPolicyKey, 0, len(rules))
	vals := make([]abi.AbiHpPolicyVal, 0, len(rules))
	for k, v := range rules {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	if len(keys) > 0 {
		if _, err := inner.BatchUpdate(keys, vals, nil); err != nil {
			if !errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("fill rule table: %w", err)
			}
			for i := range keys {
				if err := inner.Put(keys[i], vals[i]); err != nil {
					return fmt.Errorf("fill rule table: %w", err)
				}
			}
		}
	}
	if err := m.Policy.Put(uint32(0), inner); err != nil {
		return fmt.Errorf("swap rule table: %w", err)
	}
	return nil
}

// installedRules reads the rule table the datapath uses now.
func (m *Maps) installedRules() (Rules, error) {
	var id ebpf.MapID
	if err := m.Policy.Lookup(uint32(0), &id); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Rules{}, nil
		}
		return nil, fmt.Errorf("read rule table id: %w", err)
	}
	inner, err := ebpf.NewMapFromID(id)
	if err != nil {
		return nil, fmt.Errorf("open rule table: %w", err)
	}
	defer inner.Close()
	out := Rules{}
	var k abi.AbiHpPolicyKey
	var v abi.AbiHpPolicyVal
	it := inner.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	return out, it.Err()
}

// ipKey is the ipcache key of prefix p.
func ipKey(p netip.Prefix) abi.AbiHpIpcacheKey {
	a := p.Addr().As4()
	return abi.AbiHpIpcacheKey{Prefixlen: uint32(p.Bits()), Addr: nativeAddr(a)}
}

func nativeAddr(a [4]byte) uint32 {
	return uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16 | uint32(a[3])<<24
}

func prefixOf(k abi.AbiHpIpcacheKey) netip.Prefix {
	a := k.Addr
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24)}), int(k.Prefixlen))
}

// writeIPCache makes the ipcache hold want: every entry of want is written
// (an update of one entry is atomic), then, when prune is set, every other
// entry this plugin wrote is deleted (another plugin's entries stay).
func (m *Maps) writeIPCache(want map[netip.Prefix]abi.AbiHpIpcacheVal, prune bool) error {
	have := map[netip.Prefix]abi.AbiHpIpcacheVal{}
	var k abi.AbiHpIpcacheKey
	var v abi.AbiHpIpcacheVal
	it := m.IPCache.Iterate()
	for it.Next(&k, &v) {
		have[prefixOf(k)] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read ipcache: %w", err)
	}
	for p, v := range want {
		if old, ok := have[p]; ok && old == v {
			continue
		}
		if err := m.IPCache.Put(ipKey(p), v); err != nil {
			return fmt.Errorf("ipcache %s: %w", p, err)
		}
	}
	if !prune {
		return nil
	}
	for p, v := range have {
		if _, ok := want[p]; ok || v.Flags&ipcacheOwned == 0 {
			continue
		}
		if err := m.IPCache.Delete(ipKey(p)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("ipcache delete %s: %w", p, err)
		}
	}
	return nil
}
