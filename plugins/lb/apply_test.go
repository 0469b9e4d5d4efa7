package lb

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/services"
)

// countKeys counts the keys of m.
func countKeys(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, info.KeySize)
	n := 0
	it := m.Iterate()
	var val []byte
	for it.Next(&key, &val) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// mapCounts is how many entries each lb map holds.
func mapCounts(t *testing.T, ms *Maps) map[string]int {
	return map[string]int{
		"services": countKeys(t, ms.Services), "backends": countKeys(t, ms.Backends), "slots": countKeys(t, ms.Slots),
		"revnat": countKeys(t, ms.RevNat), "maglev chunks named": tableChunks(t, ms),
	}
}

// tableChunks counts the lb4_maglev chunks that service values name: the
// tables a packet can reach (the array itself always holds every chunk).
func tableChunks(t *testing.T, ms *Maps) int {
	t.Helper()
	var k abi.LB4Key
	var v abi.LB4Service
	n := 0
	it := ms.Services.Iterate()
	for it.Next(&k, &v) {
		n += int(tableOf(v).n)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func svcArgs(vip, alg string, bes ...string) services.ServiceAddArgs {
	return services.ServiceAddArgs{VIP: vip, Algorithm: alg, Backends: backends(bes...)}
}

func TestPrivilegedLBApplyRefusesConflicts(t *testing.T) {
	h := newLB(t)
	h.add(t, svcArgs("10.96.0.1:80/tcp", "random", "10.240.0.1:80"))
	before := mapCounts(t, h.maps)
	cases := []struct {
		name string
		set  []services.ServiceAddArgs
		want string
	}{
		{"duplicate VIP in the file", []services.ServiceAddArgs{
			svcArgs("10.96.0.2:80/tcp", "maglev", "10.240.0.2:80"),
			svcArgs("10.96.0.3:80/tcp", "random", "10.240.0.3:80"),
			svcArgs("10.96.0.2:80/tcp", "random", "10.240.0.4:80"),
		}, "both have VIP 10.96.0.2:80/tcp"},
		{"VIP that exists", []services.ServiceAddArgs{
			svcArgs("10.96.0.2:80/tcp", "maglev", "10.240.0.2:80"),
			svcArgs("10.96.0.1:80/tcp", "random", "10.240.0.9:80"),
		}, "10.96.0.1:80/tcp exists"},
	}
	for _, c := range cases {
		_, err := Run(h.store, "service-apply", mustJSON(t, c.set))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to name %q", c.name, err, c.want)
		}
		if after := mapCounts(t, h.maps); !equalCounts(after, before) {
			t.Errorf("%s: maps changed: %v, were %v", c.name, after, before)
		}
	}
	if s := h.service(t, "10.96.0.1:80/tcp"); len(s.Backends) != 1 || s.Backends[0].Address != "10.240.0.1:80" {
		t.Errorf("existing service changed: %+v", s)
	}
}

// TestPrivilegedLBFailedCommitUndoes: the kernel refuses the service write of
// the second service (its services map is full); that commit takes back its
// backends, rev-NAT entry, slots and Maglev table, and the apply takes back
// the first service.
func TestPrivilegedLBFailedCommitUndoes(t *testing.T) {
	h := newLB(t)
	info, err := h.maps.Services.Info()
	if err != nil {
		t.Fatal(err)
	}
	small, err := ebpf.NewMap(&ebpf.MapSpec{Type: info.Type, KeySize: info.KeySize, ValueSize: info.ValueSize, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	ms := *h.maps
	ms.Services = small
	store := NewStore(&ms, h.cfg)
	before := mapCounts(t, &ms)
	set := []services.ServiceAddArgs{
		svcArgs("10.96.1.1:80/tcp", "maglev", "10.240.1.1:80", "10.240.1.2:80"),
		svcArgs("10.96.1.2:80/tcp", "maglev", "10.240.1.3:80", "10.240.1.4:80"),
	}
	_, err = Run(store, "service-apply", mustJSON(t, set))
	if err == nil {
		t.Fatal("apply into a full services map succeeded")
	}
	t.Logf("apply: %v", err)
	if after := mapCounts(t, &ms); !equalCounts(after, before) {
		t.Errorf("maps after the failed apply: %v, were %v", after, before)
	}

	// Next to a live service, a failed add leaves the maps as they were.
	if _, err := Run(store, "service-add", mustJSON(t, set[0])); err != nil {
		t.Fatal(err)
	}
	mid := mapCounts(t, &ms)
	if _, err := Run(store, "service-add", mustJSON(t, set[1])); err == nil {
		t.Fatal("second service fit a one-entry map")
	}
	if after := mapCounts(t, &ms); !equalCounts(after, mid) {
		t.Errorf("maps after a failed add: %v, were %v", after, mid)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}
