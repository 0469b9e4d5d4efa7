// Package pin is the bpffs layout of hotpath and the rules for opening what is
// pinned there: shared maps are created once, re-opened ever after, and a pin
// that does not match what the code expects is an error, never a silent
// re-creation (that would drop every tracked connection).
package pin

import (
	"fmt"
	"path/filepath"
)

// DefaultRoot is the pin root when --bpffs is not given.
const DefaultRoot = "/sys/fs/bpf/hotpath"

// Layout resolves pin paths under one root:
//
//	<root>/maps/<name>                 shared maps
//	<root>/calls/pipeline              the pipeline prog array (all generation banks)
//	<root>/links/<ifname>/<direction>  TCX links
//	<root>/plugins/<plugin>/<gen>/...  plugin programs and private maps
//	<root>/remap/<name>                the other map of a live resize in flight
type Layout struct {
	Root string
}

// Map is the pin path of shared map name.
func (l Layout) Map(name string) string { return filepath.Join(l.Root, "maps", name) }

// Shared is the pin path of shared map name; the prog array lives under calls/.
func (l Layout) Shared(name string) string {
	if name == "calls" {
		return l.Calls()
	}
	return l.Map(name)
}

// Remap is where a live resize or migration pins the other map of shared
// map name while it runs: the new map until the switch, the old one after.
func (l Layout) Remap(name string) string { return filepath.Join(l.Root, "remap", name) }

// RemapDir holds the pins of a remap in flight.
func (l Layout) RemapDir() string { return filepath.Join(l.Root, "remap") }

// Calls is the pin path of the pipeline prog array.
func (l Layout) Calls() string { return filepath.Join(l.Root, "calls", "pipeline") }

// Link is the pin path of the TCX link on ifname in direction dir.
func (l Layout) Link(ifname, dir string) string {
	return filepath.Join(l.Root, "links", ifname, dir)
}

// Links is the directory holding every device's links.
func (l Layout) Links() string { return filepath.Join(l.Root, "links") }

// Plugin is the directory of plugin name's objects for generation gen.
func (l Layout) Plugin(name string, gen uint32) string {
	return filepath.Join(l.Root, "plugins", name, fmt.Sprint(gen))
}

// PluginPrivate is the directory of plugin name's private maps, which
// outlive generations.
func (l Layout) PluginPrivate(name string) string {
	return filepath.Join(l.Root, "plugins", name, "maps")
}

// Prog is the pin path of the program plugin name loaded into slot for gen.
func (l Layout) Prog(name string, gen uint32, slot string) string {
	return filepath.Join(l.Plugin(name, gen), slot)
}
