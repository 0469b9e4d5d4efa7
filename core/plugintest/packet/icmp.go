package packet

import (
	"encoding/binary"
	"net/netip"
)

// ICMP types and codes the datapath treats as errors.
const (
	ICMPDestUnreach  = 3
	ICMPTimeExceeded = 11
	ICMPParamProblem = 12

	CodePortUnreach = 3
	CodeFragNeeded  = 4
)

// ICMPError builds an ICMP error from src to dst quoting the IP packet of
// frame (an Ethernet frame as built here), cut to quote bytes of it (0: all).
// mtu fills the next-hop MTU field of a fragmentation-needed error.
func ICMPError(src, dst netip.Addr, typ, code uint8, mtu uint16, frame []byte, quote int) []byte {
	q := frame[14:]
	if quote > 0 && quote < len(q) {
		q = q[:quote]
	}
	l4 := make([]byte, 8+len(q))
	l4[0], l4[1] = typ, code
	binary.BigEndian.PutUint16(l4[6:], mtu)
	copy(l4[8:], q)
	binary.BigEndian.PutUint16(l4[2:], checksum(l4, 0))
	return Raw(src, dst, ProtoICMP, l4)
}

// ICMPValid reports whether an ICMP frame's IP and ICMP checksums are right,
// and, for an error, whether the quoted IP header's checksum is.
func ICMPValid(b []byte) bool {
	if len(b) < 42 || b[23] != ProtoICMP || checksum(b[14:34], 0) != 0 {
		return false
	}
	tot := int(binary.BigEndian.Uint16(b[16:]))
	if 14+tot > len(b) || checksum(b[34:14+tot], 0) != 0 {
		return false
	}
	switch b[34] {
	case ICMPDestUnreach, ICMPTimeExceeded, ICMPParamProblem:
		if len(b) < 42+20 {
			return false
		}
		ihl := int(b[42]&0xf) * 4
		return len(b) >= 42+ihl && checksum(b[42:42+ihl], 0) == 0
	}
	return true
}

// Quoted returns the quoted packet of an ICMP error frame as a frame of its
// own (zero Ethernet header), so Addrs and friends read it.
func Quoted(b []byte) []byte {
	return append(make([]byte, 14), b[42:]...)
}

// QuotedL4Valid reports whether the UDP checksum of a quoted datagram that
// was quoted whole is right (TCP or UDP).
func QuotedL4Valid(b []byte) bool { return Valid(Quoted(b)) }

// Fragment splits the IP packet of frame into fragments of at most mtu
// bytes of IP (header included), with IP identifier id; each fragment is a
// frame of its own with a valid header checksum.
func Fragment(frame []byte, id uint16, mtu int) [][]byte {
	hdr := frame[14:34]
	data := frame[34:]
	step := (mtu - 20) &^ 7
	var out [][]byte
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		f := make([]byte, 34+end-off)
		copy(f, frame[:34])
		copy(f[34:], data[off:end])
		ip := f[14:34]
		copy(ip, hdr)
		binary.BigEndian.PutUint16(ip[2:], uint16(20+end-off))
		binary.BigEndian.PutUint16(ip[4:], id)
		fo := uint16(off / 8)
		if end < len(data) {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(ip[6:], fo)
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
		out = append(out, f)
	}
	return out
}

// Reassemble joins fragments (in order) back into one frame with a valid IP
// header checksum.
func Reassemble(frags [][]byte) []byte {
	out := append([]byte(nil), frags[0][:34]...)
	for _, f := range frags {
		out = append(out, f[34:]...)
	}
	ip := out[14:34]
	binary.BigEndian.PutUint16(ip[2:], uint16(len(out)-14))
	ip[6], ip[7], ip[10], ip[11] = 0, 0, 0, 0
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	return out
}
