package dptest_test

import (
	"net/netip"
	"testing"

	"github.com/hotpath/hotpath/core/plugintest/packet"
)

// TestFuzzInvariantsCanFail shows that each invariant of
// FuzzPrivilegedPipeline rejects what it is meant to reject.
func TestFuzzInvariantsCanFail(t *testing.T) {
	nat := newNATRelation()
	be1, be2 := netip.MustParseAddrPort("10.240.2.2:8080"), netip.MustParseAddrPort("10.240.2.3:8080")
	vip2 := netip.MustParseAddrPort("10.96.0.53:53")
	nat.add(fuzzVIPTCP, be1)
	nat.add(fuzzVIPTCP, be2)
	nat.add(vip2, netip.MustParseAddrPort("10.240.2.9:5353"))
	other := netip.MustParseAddrPort("10.240.9.9:8080")

	syn := packet.TCP(fuzzClient, fuzzVIPTCP, packet.SYN, nil)
	reply := packet.TCP(be1, fuzzClient, packet.SYN|packet.ACK, nil)
	for name, c := range map[string]struct {
		in, out []byte
		ok      bool
	}{
		"dnat to a backend":                 {syn, packet.TCP(fuzzClient, be2, packet.SYN, nil), true},
		"untouched":                         {syn, syn, true},
		"reverse nat to the vip":            {reply, packet.TCP(fuzzVIPTCP, fuzzClient, packet.SYN|packet.ACK, nil), true},
		"answered":                          {syn, packet.TCP(fuzzVIPTCP, fuzzClient, packet.RST|packet.ACK, nil), true},
		"dnat to a stranger":                {syn, packet.TCP(fuzzClient, other, packet.SYN, nil), false},
		"dnat to the wrong port":            {syn, packet.TCP(fuzzClient, netip.AddrPortFrom(be1.Addr(), 9), packet.SYN, nil), false},
		"dnat to another service's backend": {syn, packet.TCP(fuzzClient, netip.MustParseAddrPort("10.240.2.9:5353"), packet.SYN, nil), false},
		"reverse nat to another vip":        {reply, packet.TCP(vip2, fuzzClient, packet.SYN|packet.ACK, nil), false},
		"source rewritten":                  {syn, packet.TCP(other, fuzzVIPTCP, packet.SYN, nil), false},
	} {
		if msg := nat.check(c.in, c.out); (msg == "") != c.ok {
			t.Errorf("%s: check said %q, want ok=%v", name, msg, c.ok)
		}
	}

	// An ICMP error whose quoted header is translated to a stranger.
	quoted := func(src, dst netip.AddrPort) []byte {
		q := packet.UDP(src, dst, []byte("q"))[14 : 14+28]
		l4 := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, q...)
		return packet.Raw(be1.Addr(), fuzzClient.Addr(), packet.ProtoICMP, l4)
	}
	in := quoted(fuzzClient, be1)
	if msg := nat.check(in, quoted(fuzzClient, fuzzVIPTCP)); msg != "" {
		t.Errorf("quoted backend turned into its VIP rejected: %s", msg)
	}
	if msg := nat.check(in, quoted(fuzzClient, other)); msg == "" {
		t.Error("quoted header translated to a stranger accepted")
	}

	for n, want := range map[int]bool{34: true, 40: true, 53: true, 54: false} {
		if got := truncated(syn[:n]) != ""; got != want {
			t.Errorf("SYN cut at %d: truncated %v, want %v", n, got, want)
		}
	}
	if !checksumsValid(syn) || !checksumsValid(reply) {
		t.Error("crafted frames judged invalid")
	}
	bad := append([]byte(nil), syn...)
	bad[len(bad)-1] ^= 1
	if checksumsValid(bad) {
		t.Error("a flipped bit went unnoticed")
	}
	for _, f := range [][]byte{bad, packet.UDP(fuzzClient, fuzzVIPUDP, []byte("odd")), packet.ICMPEcho(fuzzClient.Addr(), fuzzVIPTCP.Addr(), false, 1, 2)} {
		f[35] ^= 0x40 // a port or the ICMP code
		if fixChecksums(f); !checksumsValid(f) {
			t.Errorf("fixChecksums left bad checksums in %x", f)
		}
	}
}
