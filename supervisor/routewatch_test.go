package supervisor

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestNeighChangedOnlyForWhatAHopHolds: moves between valid states keep the
// remembered hops; a new entry, a new MAC, an entry becoming invalid or
// going away forget them.
func TestNeighChangedOnlyForWhatAHopHolds(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	upd := func(typ uint16, state int, m string) netlink.NeighUpdate {
		return netlink.NeighUpdate{Type: typ, Neigh: netlink.Neigh{LinkIndex: 3, IP: net.ParseIP("10.240.2.2"), State: state, HardwareAddr: mac(m)}}
	}
	seen := map[neighKey]neighSeen{}
	for _, c := range []struct {
		what string
		u    netlink.NeighUpdate
		want bool
	}{
		{"new entry", upd(unix.RTM_NEWNEIGH, netlink.NUD_REACHABLE, "02:00:00:00:00:01"), true},
		{"reachable -> stale", upd(unix.RTM_NEWNEIGH, netlink.NUD_STALE, "02:00:00:00:00:01"), false},
		{"stale -> delay", upd(unix.RTM_NEWNEIGH, netlink.NUD_DELAY, "02:00:00:00:00:01"), false},
		{"delay -> probe", upd(unix.RTM_NEWNEIGH, netlink.NUD_PROBE, "02:00:00:00:00:01"), false},
		{"new MAC", upd(unix.RTM_NEWNEIGH, netlink.NUD_REACHABLE, "02:00:00:00:00:02"), true},
		{"failed", upd(unix.RTM_NEWNEIGH, netlink.NUD_FAILED, "02:00:00:00:00:02"), true},
		{"valid again", upd(unix.RTM_NEWNEIGH, netlink.NUD_REACHABLE, "02:00:00:00:00:02"), true},
		{"deleted", upd(unix.RTM_DELNEIGH, netlink.NUD_REACHABLE, "02:00:00:00:00:02"), true},
		{"back after delete", upd(unix.RTM_NEWNEIGH, netlink.NUD_REACHABLE, "02:00:00:00:00:02"), true},
	} {
		if got := neighChanged(seen, c.u); got != c.want {
			t.Errorf("%s: changed %v, want %v", c.what, got, c.want)
		}
	}
}
