package packet

import (
	"net/netip"
	"testing"
)

func TestBuiltPacketsAreValid(t *testing.T) {
	a := netip.MustParseAddrPort("10.240.1.2:40000")
	b := netip.MustParseAddrPort("10.240.2.2:80")
	for name, p := range map[string][]byte{
		"tcp": TCP(a, b, SYN, nil), "tcp-data": TCP(a, b, ACK|PSH, []byte("hello")),
		"udp": UDP(a, b, []byte("odd")), "icmp": ICMPEcho(a.Addr(), b.Addr(), false, 7, 1),
	} {
		if !Valid(p) {
			t.Errorf("%s: checksum invalid", name)
		}
	}
	p := TCP(a, b, SYN, nil)
	p[40]++ // corrupt the sequence number
	if Valid(p) {
		t.Error("corrupted packet reported valid")
	}
	if s, d := Addrs(TCP(a, b, SYN, nil)); s != a || d != b {
		t.Errorf("Addrs = %v %v", s, d)
	}
}
