// Package packet crafts and reads Ethernet/IPv4 packets for stage tests run
// with BPF_PROG_TEST_RUN.
package packet

import (
	"encoding/binary"
	"net/netip"
)

// TCP flag bits.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// IP protocol numbers.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// TCP builds an Ethernet/IPv4/TCP packet with valid checksums.
func TCP(src, dst netip.AddrPort, flags uint8, payload []byte) []byte {
	l4 := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint32(l4[4:], 1000)
	l4[12] = 5 << 4
	l4[13] = flags
	binary.BigEndian.PutUint16(l4[14:], 65535)
	copy(l4[20:], payload)
	binary.BigEndian.PutUint16(l4[16:], l4Checksum(src.Addr(), dst.Addr(), ProtoTCP, l4))
	return frame(src.Addr(), dst.Addr(), ProtoTCP, l4)
}

// UDP builds an Ethernet/IPv4/UDP packet with valid checksums.
func UDP(src, dst netip.AddrPort, payload []byte) []byte {
	l4 := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	copy(l4[8:], payload)
	binary.BigEndian.PutUint16(l4[6:], l4Checksum(src.Addr(), dst.Addr(), ProtoUDP, l4))
	return frame(src.Addr(), dst.Addr(), ProtoUDP, l4)
}

// ICMPEcho builds an echo request (reply=false) or reply with identifier id.
func ICMPEcho(src, dst netip.Addr, reply bool, id, seq uint16) []byte {
	l4 := make([]byte, 16)
	if !reply {
		l4[0] = 8
	}
	binary.BigEndian.PutUint16(l4[4:], id)
	binary.BigEndian.PutUint16(l4[6:], seq)
	binary.BigEndian.PutUint16(l4[2:], checksum(l4, 0))
	return frame(src, dst, ProtoICMP, l4)
}

// Raw builds an Ethernet/IPv4 packet around an arbitrary L4 body.
func Raw(src, dst netip.Addr, proto uint8, l4 []byte) []byte { return frame(src, dst, proto, l4) }

func frame(src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	b := make([]byte, 14+20+len(l4))
	copy(b[0:6], []byte{0x02, 0, 0, 0, 0, 2})
	copy(b[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	ip[8] = 64
	ip[9] = proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	copy(b[34:], l4)
	return b
}

func l4Checksum(src, dst netip.Addr, proto uint8, l4 []byte) uint16 {
	s, d := src.As4(), dst.As4()
	var sum uint32
	for i := 0; i < 4; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	sum += uint32(proto) + uint32(len(l4))
	return checksum(l4, sum)
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Valid reports whether the IPv4 header checksum and the TCP/UDP checksum of
// an Ethernet frame built like the ones above are correct.
func Valid(b []byte) bool {
	if len(b) < 34 {
		return false
	}
	ip := b[14:34]
	if checksum(ip, 0) != 0 {
		return false
	}
	l4 := b[34:]
	var src, dst [4]byte
	copy(src[:], ip[12:16])
	copy(dst[:], ip[16:20])
	switch ip[9] {
	case ProtoTCP, ProtoUDP:
		return l4Checksum(netip.AddrFrom4(src), netip.AddrFrom4(dst), ip[9], l4) == 0
	}
	return true
}

// Addrs returns the source and destination of an Ethernet/IPv4/TCP-or-UDP frame.
func Addrs(b []byte) (src, dst netip.AddrPort) {
	var s, d [4]byte
	copy(s[:], b[26:30])
	copy(d[:], b[30:34])
	sp := binary.BigEndian.Uint16(b[34:])
	dp := binary.BigEndian.Uint16(b[36:])
	return netip.AddrPortFrom(netip.AddrFrom4(s), sp), netip.AddrPortFrom(netip.AddrFrom4(d), dp)
}
