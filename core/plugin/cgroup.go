package plugin

import (
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
)

// Cgroup attach points a plugin may name in LoadResponse.Cgroup. The
// supervisor attaches each named program to its configured cgroup v2 with a
// link it pins and holds, so the program outlives the plugin process.
const (
	CgroupConnect4    = "connect4"
	CgroupSendmsg4    = "sendmsg4"
	CgroupRecvmsg4    = "recvmsg4"
	CgroupGetpeername = "getpeername4"
)

var cgroupAttach = map[string]ebpf.AttachType{
	CgroupConnect4:    ebpf.AttachCGroupInet4Connect,
	CgroupSendmsg4:    ebpf.AttachCGroupUDP4Sendmsg,
	CgroupRecvmsg4:    ebpf.AttachCGroupUDP4Recvmsg,
	CgroupGetpeername: ebpf.AttachCgroupInet4GetPeername,
}

// CgroupAttachType is the kernel attach type of a cgroup attach point name.
func CgroupAttachType(name string) (ebpf.AttachType, error) {
	t, ok := cgroupAttach[name]
	if !ok {
		return 0, fmt.Errorf("unknown cgroup attach point %q (have %v)", name, CgroupPoints())
	}
	return t, nil
}

// CgroupPoints lists the attach point names, sorted.
func CgroupPoints() []string {
	out := make([]string, 0, len(cgroupAttach))
	for n := range cgroupAttach {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
