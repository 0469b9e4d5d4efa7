package supervisor

import (
	"strings"
	"testing"

	"github.com/hotpath/hotpath/core/plugin"
)

// A Load answer naming an unknown attach point, or cgroup programs while the
// configured cgroup is no cgroup v2 directory, is refused before the flip.
func TestCheckCgroup(t *testing.T) {
	s := &Supervisor{cfg: Config{Cgroup: t.TempDir()}}
	if err := s.checkCgroup(&plugin.LoadResponse{}); err != nil {
		t.Errorf("no cgroup programs: %v", err)
	}
	err := s.checkCgroup(&plugin.LoadResponse{Cgroup: map[string]string{"connect6": "/x"}})
	if err == nil || !strings.Contains(err.Error(), "unknown cgroup attach point") {
		t.Errorf("unknown attach point: %v", err)
	}
	err = s.checkCgroup(&plugin.LoadResponse{Cgroup: map[string]string{plugin.CgroupConnect4: "/x"}})
	if err == nil || !strings.Contains(err.Error(), "not a cgroup v2 directory") {
		t.Errorf("cgroup programs for a plain directory: %v", err)
	}
}

func TestCgroupAttachTypes(t *testing.T) {
	for _, p := range plugin.CgroupPoints() {
		if _, err := plugin.CgroupAttachType(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if len(plugin.CgroupPoints()) != 4 {
		t.Errorf("attach points %v, want connect4, getpeername4, recvmsg4, sendmsg4", plugin.CgroupPoints())
	}
}
