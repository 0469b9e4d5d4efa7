package supervisor

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/supervisor/host"
)

// A schema migration is a remap (remap.go) whose new maps have another
// value layout: an upgrade to a plugin build that declares another layout
// version of a map it owns (plugin.Own) migrates the pinned maps up or down
// before its programs go live, and a rollback of that upgrade migrates them
// back. The conversion is one mechanism for every map: fields carried by
// name (pin.Converter), then, when the meaning of a field changes, the
// plugin's own Go code: the build that knows both layouts finishes each
// batch of values (plugin.CommandMigrate, pluginConvert).

// Migration is one map's layout change.
type Migration struct {
	Map  string `json:"map"`
	From uint32 `json:"from_layout"`
	To   uint32 `json:"to_layout"`
	What string `json:"what"` // what the conversion does, e.g. "adds rx_packets"
}

// migrations lists the layout changes the described plugin needs: every
// map it declares a layout of that differs from the pinned one, with the
// other maps of its schema group. Callers hold mu.
func (s *Supervisor) migrations(d *plugin.Description) ([]Migration, error) {
	if d.ProtocolMinor < plugin.MinorMapVersions {
		return nil, nil
	}
	var out []Migration
	for _, want := range d.Maps {
		if want.Version == 0 || !pin.Versioned(want.Name) {
			continue
		}
		m := s.maps.ByName[want.Name]
		if m == nil {
			return nil, fmt.Errorf("plugin %s: needs shared map %s, which this supervisor does not have", d.Name, want.Name)
		}
		from := pin.LayoutOf(want.Name, m)
		if from == 0 {
			return nil, fmt.Errorf("map %s: the pinned map has no layout this supervisor knows", want.Name)
		}
		if from == want.Version {
			continue
		}
		for _, g := range pin.SchemaGroup(want.Name) {
			if !slices.ContainsFunc(d.Maps, func(ms plugin.MapSchema) bool { return ms.Name == g && ms.Version == want.Version }) {
				return nil, fmt.Errorf("plugin %s: declares layout %d of %s but not of %s, which shares its layout", d.Name, want.Version, want.Name, g)
			}
		}
		out = append(out, Migration{Map: want.Name, From: from, To: want.Version})
	}
	return out, nil
}

// migrationPlan builds the remap of migs (to each one's To, or back to its
// From when down) and checks that every conversion can apply; it changes
// nothing. Of insts, the build that knows both layouts of a map finishes
// its conversion (converterFor); with none, field names alone convert.
func (s *Supervisor) migrationPlan(migs []Migration, down bool, insts ...*host.Instance) ([]RemapMap, error) {
	specs, err := pin.SharedSpecs()
	if err != nil {
		return nil, err
	}
	var out []RemapMap
	for i, mg := range migs {
		from, to := mg.From, mg.To
		if down {
			from, to = to, from
		}
		cur := s.sharedMap(mg.Map)
		if cur == nil {
			return nil, fmt.Errorf("migrate %s: no such shared map", mg.Map)
		}
		if got := pin.LayoutOf(mg.Map, cur); got != from {
			return nil, fmt.Errorf("migrate %s from layout %d: the pinned map has layout %d", mg.Map, from, got)
		}
		fromSpec, err := pin.SpecVersion(specs[mg.Map], mg.Map, from)
		if err != nil {
			return nil, fmt.Errorf("migrate %s: %w", mg.Map, err)
		}
		toSpec, err := pin.SpecVersion(specs[mg.Map], mg.Map, to)
		if err != nil {
			return nil, fmt.Errorf("migrate %s: %w", mg.Map, err)
		}
		if d := pin.KeyDiff(fromSpec, toSpec); d != "" {
			return nil, fmt.Errorf("migrate %s from layout %d to %d: %w: %s", mg.Map, from, to, pin.ErrUnconvertible, d)
		}
		conv, err := pin.NewConverter(fromSpec.Value, toSpec.Value)
		if err != nil {
			return nil, fmt.Errorf("migrate %s from layout %d to %d: %w", mg.Map, from, to, err)
		}
		spec := toSpec.Copy()
		spec.MaxEntries = cur.MaxEntries() // a migration keeps the size
		migs[i].What = conv.String()
		hook := pin.Convert(conv.Entry)
		if inst := converterFor(mg.Map, from, to, insts...); inst != nil {
			pc := &pluginConvert{inst: inst, name: mg.Map, from: from, to: to, conv: conv, src: cur}
			hook = pc.entry
			migs[i].What += fmt.Sprintf("; plugin %s %s converts", inst.Name, inst.Desc.Version)
		}
		out = append(out, RemapMap{Name: mg.Map, Spec: spec, Convert: hook, Merge: mergeLayoutsFor(mg.Map)})
	}
	return out, nil
}

func mergeLayoutsFor(name string) pin.Merge {
	if slices.Contains(ctmap.Maps, name) {
		return ctmap.MergeLayouts
	}
	return nil
}

func migrationNames(migs []Migration) string {
	var parts []string
	for _, m := range migs {
		parts = append(parts, fmt.Sprintf("%s %d->%d", m.Map, m.From, m.To))
	}
	return strings.Join(parts, ", ")
}

// migratedForward tells whether the maps of an interrupted upgrade's
// migrations are pinned in the new layout: its remap got past the flip
// (remaptx.go finished it, or it had committed).
func (s *Supervisor) migratedForward(u *UpgradeState) bool {
	if len(u.Migrations) == 0 {
		return false
	}
	for _, mg := range u.Migrations {
		m := s.maps.ByName[mg.Map]
		if m == nil || pin.LayoutOf(mg.Map, m) != mg.To {
			return false
		}
	}
	return true
}

// pinnedPrograms finds the programs plugin name loaded for generation gen
// where every hotpath plugin pins them (pin.Layout.Prog), one per slot it
// held: what an upgrade interrupted inside its migration had not recorded.
func (s *Supervisor) pinnedPrograms(name string, ps *PluginState, gen uint32) map[string]string {
	out := map[string]string{}
	for slot := range ps.Programs {
		p := s.layout.Prog(name, gen, slot)
		if _, err := os.Stat(p); err == nil {
			out[slot] = p
		}
	}
	if len(out) != len(ps.Programs) {
		return ps.Programs // finishRemap recorded them, or nothing better is known
	}
	return out
}

// freshLayouts gives the maps this start created (empty, used by no program
// yet) the layout the plugin that owns them declares, so a node can start
// on a build of another layout than the SDK's first one. A map that held
// entries before is left alone: only an upgrade migrates it.
func (s *Supervisor) freshLayouts(d *plugin.Description) error {
	s.mu.Lock()
	migs, err := s.migrations(d)
	s.mu.Unlock()
	if err != nil || len(migs) == 0 {
		return err
	}
	specs, err := pin.SharedSpecs()
	if err != nil {
		return err
	}
	for _, mg := range migs {
		if !slices.Contains(s.maps.Created, mg.Map) {
			continue // the compatibility check refuses it, naming the upgrade
		}
		spec, err := pin.SpecVersion(specs[mg.Map], mg.Map, mg.To)
		if err != nil {
			return err
		}
		old := s.sharedMap(mg.Map)
		spec = spec.Copy()
		spec.MaxEntries, spec.Pinning = old.MaxEntries(), ebpf.PinNone
		m, err := ebpf.NewMap(spec)
		if err != nil {
			return fmt.Errorf("create %s in layout %d: %w", mg.Map, mg.To, err)
		}
		path := s.layout.Shared(mg.Map)
		if err := os.Remove(path); err != nil {
			m.Close()
			return fmt.Errorf("replace the fresh %s: %w", mg.Map, err)
		}
		if err := m.Pin(path); err != nil {
			m.Close()
			return fmt.Errorf("pin %s in layout %d: %w", mg.Map, mg.To, err)
		}
		s.mu.Lock()
		s.useMap(mg.Map, m)
		s.mu.Unlock()
		old.Close()
		s.log.Info("created map in the layout its owner declares", "map", mg.Map, "layout", mg.To, "plugin", d.Name)
	}
	return nil
}
