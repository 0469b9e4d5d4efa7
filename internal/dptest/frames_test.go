package dptest_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Reading frames for the fuzz invariants. Written from the RFCs, not from
// the datapath, so they do not inherit its gaps.

const (
	etherIPv4 = 0x0800
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

// ipv4 is an untagged Ethernet/IPv4 frame's IP header and what follows it.
type ipv4 struct {
	ip   []byte // from the IP header to the end of the frame
	ihl  int
	frag bool // a fragment, first or not
	off  bool // a non-first fragment
}

func parseIPv4(frame []byte) (ipv4, bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != etherIPv4 {
		return ipv4{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl {
		return ipv4{}, false
	}
	fo := binary.BigEndian.Uint16(ip[6:])
	return ipv4{ip: ip, ihl: ihl, frag: fo&0x3fff != 0, off: fo&0x1fff != 0}, true
}

func (p ipv4) proto() uint8 { return p.ip[9] }
func (p ipv4) l4() []byte   { return p.ip[p.ihl:] }
func (p ipv4) src() netip.Addr {
	return netip.AddrFrom4([4]byte(p.ip[12:16]))
}
func (p ipv4) dst() netip.Addr {
	return netip.AddrFrom4([4]byte(p.ip[16:20]))
}

// ports of a TCP or UDP header, if the frame holds one.
func (p ipv4) ports() (src, dst uint16, ok bool) {
	if p.off || (p.proto() != protoTCP && p.proto() != protoUDP) || len(p.l4()) < 4 {
		return 0, 0, false
	}
	l4 := p.l4()
	return binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]), true
}

// inner is the IPv4 header an ICMP error quotes, if there is one.
func (p ipv4) inner() (ipv4, bool) {
	if p.proto() != protoICMP || p.off || len(p.l4()) < 8+20 {
		return ipv4{}, false
	}
	switch p.l4()[0] {
	case 3, 11, 12: // destination unreachable, time exceeded, parameter problem
	default:
		return ipv4{}, false
	}
	q := p.l4()[8:]
	ihl := int(q[0]&0x0f) * 4
	if q[0]>>4 != 4 || ihl < 20 || len(q) < ihl {
		return ipv4{}, false
	}
	fo := binary.BigEndian.Uint16(q[6:])
	return ipv4{ip: q, ihl: ihl, frag: fo&0x3fff != 0, off: fo&0x1fff != 0}, true
}

// truncated names what is cut short in an untagged IPv4 frame whose headers
// no parser can read, or returns "".
func truncated(frame []byte) string {
	if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:]) != etherIPv4 {
		return ""
	}
	ip := frame[14:]
	if len(ip) < 20 {
		return "an IPv4 header cut short"
	}
	ihl := int(ip[0]&0x0f) * 4
	switch {
	case ip[0]>>4 != 4:
		return fmt.Sprintf("IP version %d behind the IPv4 ethertype", ip[0]>>4)
	case ihl < 20:
		return fmt.Sprintf("an IP header length of %d", ihl)
	case len(ip) < ihl:
		return "IP options cut short"
	}
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		return "" // a non-first fragment carries no L4 header
	}
	l4 := ip[ihl:]
	switch ip[9] {
	case protoTCP:
		if len(l4) < 20 {
			return "a TCP header cut short"
		}
		if doff := int(l4[12]>>4) * 4; doff < 20 || len(l4) < doff {
			return fmt.Sprintf("a TCP data offset of %d with %d bytes", doff, len(l4))
		}
	case protoUDP:
		if len(l4) < 8 {
			return "a UDP header cut short"
		}
	case protoICMP:
		if len(l4) < 8 {
			return "an ICMP header cut short"
		}
	}
	return ""
}

// checksumsValid reports whether an untagged, unfragmented IPv4 frame whose
// total length matches has a right IP header checksum and, for TCP, UDP and
// ICMP, a right L4 checksum. Other frames are not judged (false).
func checksumsValid(frame []byte) bool {
	p, ok := parseIPv4(frame)
	if !ok || p.frag || int(binary.BigEndian.Uint16(p.ip[2:])) != len(p.ip) {
		return false
	}
	if sum(p.ip[:p.ihl], 0) != 0xffff {
		return false
	}
	l4 := p.l4()
	switch p.proto() {
	case protoTCP, protoUDP:
		if p.proto() == protoUDP && len(l4) >= 8 && l4[6] == 0 && l4[7] == 0 {
			return true // no checksum
		}
		pseudo := uint32(binary.BigEndian.Uint16(p.ip[12:])) + uint32(binary.BigEndian.Uint16(p.ip[14:])) +
			uint32(binary.BigEndian.Uint16(p.ip[16:])) + uint32(binary.BigEndian.Uint16(p.ip[18:])) +
			uint32(p.proto()) + uint32(len(l4))
		return sum(l4, pseudo) == 0xffff
	case protoICMP:
		return sum(l4, 0) == 0xffff
	}
	return true
}

// fixChecksums rewrites the IP header checksum of an untagged IPv4 frame
// and, when the frame holds a whole TCP, UDP or ICMP message, its L4
// checksum, so mutated frames also reach the paths valid frames take.
func fixChecksums(frame []byte) {
	p, ok := parseIPv4(frame)
	if !ok {
		return
	}
	p.ip[10], p.ip[11] = 0, 0
	binary.BigEndian.PutUint16(p.ip[10:], ^sum(p.ip[:p.ihl], 0))
	if p.frag || int(binary.BigEndian.Uint16(p.ip[2:])) != len(p.ip) {
		return
	}
	l4 := p.l4()
	var at int
	var pseudo uint32
	switch p.proto() {
	case protoTCP:
		at = 16
	case protoUDP:
		at = 6
	case protoICMP:
		at = 2
	default:
		return
	}
	if len(l4) < at+2 {
		return
	}
	if p.proto() != protoICMP {
		pseudo = uint32(binary.BigEndian.Uint16(p.ip[12:])) + uint32(binary.BigEndian.Uint16(p.ip[14:])) +
			uint32(binary.BigEndian.Uint16(p.ip[16:])) + uint32(binary.BigEndian.Uint16(p.ip[18:])) +
			uint32(p.proto()) + uint32(len(l4))
	}
	l4[at], l4[at+1] = 0, 0
	c := ^sum(l4, pseudo)
	if c == 0 && p.proto() == protoUDP {
		c = 0xffff // 0 would mean "no checksum"
	}
	binary.BigEndian.PutUint16(l4[at:], c)
}

// sum is the ones' complement sum of b plus acc, folded to 16 bits.
func sum(b []byte, acc uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// natRelation holds, per VIP, its backends: the only translations a
// frame's addresses may undergo, by address and by address and port.
type natRelation struct {
	addrs map[netip.Addr]map[netip.Addr]bool
	aps   map[netip.AddrPort]map[netip.AddrPort]bool
}

func newNATRelation() *natRelation {
	return &natRelation{addrs: map[netip.Addr]map[netip.Addr]bool{}, aps: map[netip.AddrPort]map[netip.AddrPort]bool{}}
}

func (n *natRelation) add(vip, backend netip.AddrPort) {
	if n.addrs[vip.Addr()] == nil {
		n.addrs[vip.Addr()] = map[netip.Addr]bool{}
	}
	n.addrs[vip.Addr()][backend.Addr()] = true
	if n.aps[vip] == nil {
		n.aps[vip] = map[netip.AddrPort]bool{}
	}
	n.aps[vip][backend] = true
}

func (n *natRelation) mayAddr(a, b netip.Addr) bool {
	return a == b || n.addrs[a][b] || n.addrs[b][a]
}

func (n *natRelation) mayAddrPort(a, b netip.AddrPort) bool {
	return a == b || n.aps[a][b] || n.aps[b][a]
}

// check compares a frame as it came in and left. Every address, outer and
// inner, either stays, turns from a VIP into one of its backends or from a
// backend into its VIP (with the port, where the frame has one); or the
// frame was turned into an answer, with source and destination swapped.
func (n *natRelation) check(in, out []byte) string {
	pi, ok := parseIPv4(in)
	if !ok {
		return ""
	}
	po, ok := parseIPv4(out)
	if !ok {
		return "an IPv4 frame left as something else"
	}
	if msg := n.pair(pi, po); msg != "" {
		return msg
	}
	ii, iok := pi.inner()
	io, ook := po.inner()
	if iok && ook {
		if msg := n.pair(ii, io); msg != "" {
			return "quoted header: " + msg
		}
	}
	return ""
}

func (n *natRelation) pair(in, out ipv4) string {
	if out.src() == in.dst() && out.dst() == in.src() {
		return "" // an answer
	}
	if !n.mayAddr(in.src(), out.src()) || !n.mayAddr(in.dst(), out.dst()) {
		return fmt.Sprintf("%s -> %s left as %s -> %s: not a VIP/backend translation", in.src(), in.dst(), out.src(), out.dst())
	}
	is, id, iok := in.ports()
	os, od, ook := out.ports()
	if !iok || !ook || in.proto() != out.proto() {
		return ""
	}
	if !n.mayAddrPort(netip.AddrPortFrom(in.src(), is), netip.AddrPortFrom(out.src(), os)) ||
		!n.mayAddrPort(netip.AddrPortFrom(in.dst(), id), netip.AddrPortFrom(out.dst(), od)) {
		return fmt.Sprintf("%s:%d -> %s:%d left as %s:%d -> %s:%d: not a VIP/backend translation",
			in.src(), is, in.dst(), id, out.src(), os, out.dst(), od)
	}
	return ""
}
