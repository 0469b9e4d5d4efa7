package supervisor

import "github.com/hotpath/hotpath/supervisor/pipeline"

// gens owns every generation number of the node. The live generation is
// the kernel's (the config map the entry programs read), never a copy; the
// highest number handed out and the generation each plugin's live programs
// were loaded for are kept here and nowhere else. The state file carries a
// snapshot (ActiveGen, NextGen, PluginState.Generation) that restore reads
// back at start; an upgrade's generations are those it asked gens for.
//
// Callers hold Supervisor.mu; only the change goroutine (serial.go) flips
// or allocates.
type gens struct {
	pipe   *pipeline.Pipeline
	next   uint32            // highest number handed out
	loaded map[string]uint32 // plugin -> generation of its live programs
}

func newGens(pipe *pipeline.Pipeline, st *State) *gens {
	g := &gens{pipe: pipe, next: st.NextGen, loaded: map[string]uint32{}}
	for name, ps := range st.Plugins {
		g.loaded[name] = ps.Generation
	}
	return g
}

// Active is the generation packets enter now (0: none yet).
func (g *gens) Active() uint32 { return g.pipe.Active() }

// allocate hands out the number of the next generation to build. Numbers
// are never reused, so pins of an abandoned build cannot be mistaken for
// those of a later one.
func (g *gens) allocate() uint32 {
	g.next = max(g.Active(), g.next) + 1
	return g.next
}

// flip makes gen live with one store into the config map.
func (g *gens) flip(gen uint32) { g.pipe.Flip(gen) }

// of is the generation plugin name's live programs were loaded for.
func (g *gens) of(name string) uint32 { return g.loaded[name] }

// set records that plugin name's live programs are those of gen.
func (g *gens) set(name string, gen uint32) { g.loaded[name] = gen }

// snapshot writes the numbers into st for saving.
func (g *gens) snapshot(st *State) {
	st.ActiveGen, st.NextGen = g.Active(), g.next
	for name, ps := range st.Plugins {
		ps.Generation = g.loaded[name]
	}
}
