package plugintest

import (
	"testing"

	"github.com/cilium/ebpf/link"

	"github.com/hotpath/hotpath/core/entry"
	"github.com/hotpath/hotpath/lab"
)

// AttachLab attaches the harness's entry programs to every pod device of l,
// from inside its node namespace, so real traffic runs the generation the
// test installs. The links go away with the test.
func (h *Harness) AttachLab(t testing.TB, l *lab.Lab) {
	t.Helper()
	var links []link.Link
	err := l.Node.Do(func() error {
		for _, p := range l.Pods {
			ls, err := h.Entry.Attach(h.Layout.Link, p.HostIf)
			if err != nil {
				return err
			}
			links = append(links, ls...)
		}
		return nil
	})
	t.Cleanup(func() { entry.CloseLinks(links) })
	if err != nil {
		t.Fatal(err)
	}
}
