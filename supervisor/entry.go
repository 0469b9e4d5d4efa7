package supervisor

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/hotpath/hotpath/core/entry"
)

// The entry program, its loader and TCX attachment live in core/entry, shared
// with plugintest; these names keep the supervisor's call sites unchanged.
const (
	DirIngress = entry.DirIngress
	DirEgress  = entry.DirEgress
)

// Entry holds the loaded entry programs.
type Entry = entry.Programs

// LoadEntry loads the entry programs against the shared maps.
func LoadEntry(maps map[string]*ebpf.Map) (*Entry, error) { return entry.Load(maps) }

func closeLinks(ls []link.Link) { entry.CloseLinks(ls) }
