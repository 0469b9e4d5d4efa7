// Package mono loads the monolithic equivalent of the pipeline (bpf/mono.c),
// which benchmarks compare with the staged pipeline.
package mono

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I../../bpf" -target bpfel -go-package mono -no-global-types mono bpf/mono.c

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Programs are the monolithic entry programs.
type Programs struct {
	Ingress, Egress *ebpf.Program
}

// Load loads them against the shared maps with default lifetimes and seed.
func Load(maps map[string]*ebpf.Map) (*Programs, error) {
	spec, err := loadMono()
	if err != nil {
		return nil, fmt.Errorf("load mono spec: %w", err)
	}
	var objs monoPrograms
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return nil, fmt.Errorf("load mono programs: %w", err)
	}
	return &Programs{Ingress: objs.HpMonoIngress, Egress: objs.HpMonoEgress}, nil
}

// Close releases the programs.
func (p *Programs) Close() {
	p.Ingress.Close()
	p.Egress.Close()
}
