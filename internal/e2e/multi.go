package e2e

import (
	"testing"

	"github.com/hotpath/hotpath/internal/node"
	"github.com/hotpath/hotpath/lab"
)

// NewMulti creates a two-node lab (lab.NewMulti: offloads off, a private
// bpffs per node) with pods[i] on node i, and one Env per node; nothing
// runs yet.
func NewMulti(t testing.TB, pods [2][]string) (*lab.Multi, [2]*Env) {
	t.Helper()
	lab.Privileged(t)
	bin := Binaries(t)
	m := lab.NewMultiT(t, lab.MultiOptions{Pods: pods, NoOffload: true, MountBPFFS: true})
	var envs [2]*Env
	for i, l := range m.Nodes {
		e := &Env{Node: node.New(l, bin), T: t}
		t.Cleanup(func() {
			variantMu.Lock()
			e.Ours = []string{variantDir}
			variantMu.Unlock()
			e.Stop()
		})
		envs[i] = e
	}
	return m, envs
}
