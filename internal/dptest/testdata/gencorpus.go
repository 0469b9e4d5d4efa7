//go:build ignore

// gencorpus writes the seed corpus of FuzzPrivilegedPipeline. Run it from
// internal/dptest: go run testdata/gencorpus.go
package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

var (
	client = ap("10.240.1.2:40000")
	vipTCP = ap("10.96.0.10:80")
	vipUDP = ap("10.96.0.53:53")
	noBeT  = ap("10.96.0.99:80")
	noBeU  = ap("10.96.0.98:53")
	be1    = ap("10.240.2.2:8080")
	be2    = ap("10.240.2.3:8080")
	beUDP  = ap("10.240.2.9:5353")
	router = netip.MustParseAddr("10.240.3.1")
)

const (
	fin = 0x01
	syn = 0x02
	rst = 0x04
	psh = 0x08
	ack = 0x10
	urg = 0x20
)

type seed struct {
	name   string
	egress bool
	frame  []byte
}

func main() {
	var seeds []seed
	add := func(name string, egress bool, frame []byte) { seeds = append(seeds, seed{name, egress, frame}) }

	// Plain flows through the VIPs, both ways.
	add("tcp-syn-to-vip", false, tcp(client, vipTCP, syn, nil))
	add("tcp-ack-data-to-vip", false, tcp(client, vipTCP, ack|psh, []byte("GET / HTTP/1.0\r\n\r\n")))
	add("tcp-synack-from-be1", true, tcp(be1, client, syn|ack, nil))
	add("tcp-synack-from-be2", true, tcp(be2, client, syn|ack, nil))
	add("tcp-syn-no-backends", false, tcp(client, noBeT, syn, nil))
	add("tcp-syn-not-a-service", false, tcp(client, ap("10.240.2.2:22"), syn, nil))
	add("udp-to-vip", false, udp(client, vipUDP, []byte("query")))
	add("udp-reply-from-backend", true, udp(beUDP, client, []byte("answer")))
	add("udp-no-backends", false, udp(client, noBeU, []byte("query")))
	zero := udp(client, vipUDP, []byte("nocsum"))
	zero[40], zero[41] = 0, 0
	add("udp-zero-checksum", false, zero)
	add("icmp-echo-to-vip", false, icmpEcho(client.Addr(), vipTCP.Addr(), 8))
	add("icmp-echo-reply-from-backend", true, icmpEcho(be1.Addr(), client.Addr(), 0))
	add("gre", false, ipv4(client.Addr(), vipTCP.Addr(), 47, nil, make([]byte, 24), 0))

	// TCP flag combinations, in both directions.
	for _, f := range []struct {
		name  string
		flags uint8
	}{{"fin", fin | ack}, {"rst", rst}, {"rst-ack", rst | ack}, {"syn-fin", syn | fin}, {"syn-rst", syn | rst},
		{"null", 0}, {"xmas", fin | psh | urg}, {"all", 0xff}} {
		add("tcp-flags-"+f.name+"-to-vip", false, tcp(client, vipTCP, f.flags, nil))
		add("tcp-flags-"+f.name+"-from-be1", true, tcp(be1, client, f.flags, nil))
	}

	// Truncated frames (the kernel refuses a test run of a frame shorter
	// than Ethernet and an IP header), and headers cut by the total length.
	full := tcp(client, vipTCP, syn, nil)
	for _, n := range []int{34, 40, 53} {
		add(fmt.Sprintf("truncated-tcp-at-%d", n), false, full[:n])
	}
	add("tcp-cut-by-total-length", false, setU16(append(tcp(client, vipTCP, syn, nil), 0, 0, 0, 0, 0, 0), 16, 30))
	add("truncated-udp-at-38", false, udp(client, vipUDP, []byte("q"))[:38])
	add("truncated-icmp-at-38", false, icmpEcho(client.Addr(), vipTCP.Addr(), 8)[:38])

	// IP options.
	nops := []byte{1, 1, 1, 0} // NOP NOP NOP EOL
	add("ip-options-tcp-to-vip", false, ipv4(client.Addr(), vipTCP.Addr(), 6, nops, tcpHdr(client, vipTCP, syn, nil), 0))
	add("ip-options-udp-reply", true, ipv4(beUDP.Addr(), client.Addr(), 17, nops, udpHdr(beUDP, client, []byte("a")), 0))
	add("ip-options-max", false, ipv4(client.Addr(), vipUDP.Addr(), 17, make([]byte, 40), udpHdr(client, vipUDP, []byte("q")), 0))
	add("ip-options-cut", false, ipv4(client.Addr(), vipTCP.Addr(), 6, nops, tcpHdr(client, vipTCP, syn, nil), 0)[:36])

	// Fragments of a datagram to the UDP VIP: first and non-first, and a
	// TCP fragment.
	big := make([]byte, 1400)
	for i := range big {
		big[i] = byte(i)
	}
	whole := udpHdr(client, vipUDP, big)
	add("frag-udp-first", false, ipv4(client.Addr(), vipUDP.Addr(), 17, nil, whole[:1000], 0x2000))
	add("frag-udp-second", false, ipv4(client.Addr(), vipUDP.Addr(), 17, nil, whole[1000:], 1000/8))
	add("frag-udp-middle", false, ipv4(client.Addr(), vipUDP.Addr(), 17, nil, whole[504:1000], 0x2000|504/8))
	add("frag-udp-reply-first", true, ipv4(beUDP.Addr(), client.Addr(), 17, nil, udpHdr(beUDP, client, big)[:1000], 0x2000))
	add("frag-tcp-first", false, ipv4(client.Addr(), vipTCP.Addr(), 6, nil, tcpHdr(client, vipTCP, ack, big)[:512], 0x2000))
	add("frag-tcp-second", false, ipv4(client.Addr(), vipTCP.Addr(), 6, nil, tcpHdr(client, vipTCP, ack, big)[512:], 512/8))
	add("frag-first-cut-in-l4", false, ipv4(client.Addr(), vipUDP.Addr(), 17, nil, whole[:4], 0x2000))

	// Bad lengths.
	add("total-length-beyond-frame", false, setU16(tcp(client, vipTCP, syn, nil), 16, 1500))
	add("total-length-below-header", false, setU16(tcp(client, vipTCP, syn, nil), 16, 12))
	add("total-length-zero-big-tcp", false, setU16(tcp(client, vipTCP, ack, []byte("big tcp")), 16, 0))
	add("total-length-short-padding", false, append(tcp(client, vipTCP, syn, nil), make([]byte, 20)...))
	add("ihl-4", false, setByte(tcp(client, vipTCP, syn, nil), 14, 0x44))
	add("ihl-15-short", false, setByte(tcp(client, vipTCP, syn, nil), 14, 0x4f))
	add("ip-version-6-in-ipv4", false, setByte(tcp(client, vipTCP, syn, nil), 14, 0x65))
	add("tcp-doff-4", false, setByte(tcp(client, vipTCP, syn, nil), 46, 0x40))
	add("tcp-doff-15", false, setByte(tcp(client, vipTCP, syn, nil), 46, 0xf0))
	add("udp-length-too-big", false, setU16(udp(client, vipUDP, []byte("q")), 38, 900))
	add("udp-length-too-small", false, setU16(udp(client, vipUDP, []byte("q")), 38, 3))

	// VLAN-tagged, IPv6 and other ethertypes.
	add("vlan-tcp-syn-to-vip", false, vlan(tcp(client, vipTCP, syn, nil), 0x8100, 42))
	add("qinq-udp-to-vip", false, vlan(vlan(udp(client, vipUDP, []byte("q")), 0x8100, 7), 0x88a8, 100))
	add("vlan-truncated", false, vlan(tcp(client, vipTCP, syn, nil), 0x8100, 42)[:20])
	add("ipv6-tcp-syn", false, ipv6TCP())
	add("ipv6-truncated", true, ipv6TCP()[:58])
	add("arp", false, arp())

	// ICMP errors quoting a flow through the VIPs.
	udpQuoted := udpHdr(client, beUDP, []byte("query"))
	add("icmp-port-unreachable-from-udp-backend", true,
		icmpErr(beUDP.Addr(), client.Addr(), 3, 3, 0, quote(client.Addr(), beUDP.Addr(), 17, udpQuoted)))
	add("icmp-frag-needed-from-router", true,
		icmpErr(router, client.Addr(), 3, 4, 1400, quote(client.Addr(), be1.Addr(), 6, tcpHdr(client, be1, ack, nil))))
	add("icmp-frag-needed-from-router-be2", true,
		icmpErr(router, client.Addr(), 3, 4, 1400, quote(client.Addr(), be2.Addr(), 6, tcpHdr(client, be2, ack, nil))))
	add("icmp-time-exceeded", true,
		icmpErr(router, client.Addr(), 11, 0, 0, quote(client.Addr(), beUDP.Addr(), 17, udpQuoted)))
	add("icmp-parameter-problem", true,
		icmpErr(beUDP.Addr(), client.Addr(), 12, 0, 20<<24, quote(client.Addr(), beUDP.Addr(), 17, udpQuoted)))
	add("icmp-error-from-client-about-vip-reply", false,
		icmpErr(client.Addr(), vipUDP.Addr(), 3, 3, 0, quote(vipUDP.Addr(), client.Addr(), 17, udpHdr(vipUDP, client, []byte("answer")))))
	add("icmp-error-quote-8-bytes", true,
		icmpErr(beUDP.Addr(), client.Addr(), 3, 3, 0, quote(client.Addr(), beUDP.Addr(), 17, udpQuoted)[:28]))
	add("icmp-error-quote-cut", true,
		icmpErr(beUDP.Addr(), client.Addr(), 3, 3, 0, quote(client.Addr(), beUDP.Addr(), 17, udpQuoted)[:12]))
	add("icmp-error-quote-bad-ihl", true,
		icmpErr(beUDP.Addr(), client.Addr(), 3, 3, 0, setByte(quote(client.Addr(), beUDP.Addr(), 17, udpQuoted), 0, 0x4f)))
	add("icmp-error-unknown-flow", true,
		icmpErr(router, client.Addr(), 3, 1, 0, quote(client.Addr(), netip.MustParseAddr("10.240.9.9"), 6, tcpHdr(client, ap("10.240.9.9:1"), syn, nil))))

	dir := filepath.Join("testdata", "fuzz", "FuzzPrivilegedPipeline")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	for _, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\nbool(%t)\nbool(false)\n[]byte(%q)\n", s.egress, s.frame)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			fail(err)
		}
	}
	fmt.Printf("wrote %d seeds to %s\n", len(seeds), dir)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func tcp(src, dst netip.AddrPort, flags uint8, payload []byte) []byte {
	return ipv4(src.Addr(), dst.Addr(), 6, nil, tcpHdr(src, dst, flags, payload), 0)
}

func udp(src, dst netip.AddrPort, payload []byte) []byte {
	return ipv4(src.Addr(), dst.Addr(), 17, nil, udpHdr(src, dst, payload), 0)
}

// tcpHdr is a TCP segment with its checksum.
func tcpHdr(src, dst netip.AddrPort, flags uint8, payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint32(b[4:], 1000)
	binary.BigEndian.PutUint32(b[8:], 2000)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	copy(b[20:], payload)
	binary.BigEndian.PutUint16(b[16:], ^csum(b, pseudo(src.Addr(), dst.Addr(), 6, len(b))))
	return b
}

// udpHdr is a UDP datagram with its checksum.
func udpHdr(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	binary.BigEndian.PutUint16(b[6:], ^csum(b, pseudo(src.Addr(), dst.Addr(), 17, len(b))))
	return b
}

func icmpEcho(src, dst netip.Addr, typ uint8) []byte {
	b := make([]byte, 16)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], 0x1234)
	binary.BigEndian.PutUint16(b[6:], 1)
	binary.BigEndian.PutUint16(b[2:], ^csum(b, 0))
	return ipv4(src, dst, 1, nil, b, 0)
}

// icmpErr is an ICMP error (type, code, the 4 bytes after the checksum)
// quoting q.
func icmpErr(src, dst netip.Addr, typ, code uint8, rest uint32, q []byte) []byte {
	b := make([]byte, 8+len(q))
	b[0], b[1] = typ, code
	binary.BigEndian.PutUint32(b[4:], rest)
	copy(b[8:], q)
	binary.BigEndian.PutUint16(b[2:], ^csum(b, 0))
	return ipv4(src, dst, 1, nil, b, 0)
}

// quote is the IP header and first bytes of l4 as an ICMP error carries them.
func quote(src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	full := ipv4(src, dst, proto, nil, l4, 0)[14:]
	if len(full) > 20+8 {
		full = full[:20+8]
	}
	return full
}

// ipv4 frames l4 with an IPv4 header carrying opts (a multiple of 4 bytes)
// and fragment field frag, checksummed.
func ipv4(src, dst netip.Addr, proto uint8, opts, l4 []byte, frag uint16) []byte {
	hl := 20 + len(opts)
	b := make([]byte, 14+hl+len(l4))
	copy(b[0:6], []byte{0x02, 0, 0, 0, 0, 2})
	copy(b[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14 : 14+hl]
	ip[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(hl+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], 0x4242)
	binary.BigEndian.PutUint16(ip[6:], frag)
	ip[8] = 64
	ip[9] = proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	copy(ip[20:], opts)
	binary.BigEndian.PutUint16(ip[10:], ^csum(ip, 0))
	copy(b[14+hl:], l4)
	return b
}

func vlan(frame []byte, tpid uint16, id uint16) []byte {
	b := make([]byte, len(frame)+4)
	copy(b, frame[:12])
	binary.BigEndian.PutUint16(b[12:], tpid)
	binary.BigEndian.PutUint16(b[14:], id)
	copy(b[16:], frame[12:])
	return b
}

func ipv6TCP() []byte {
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], 40000)
	binary.BigEndian.PutUint16(l4[2:], 80)
	l4[12] = 5 << 4
	l4[13] = syn
	b := make([]byte, 14+40+len(l4))
	binary.BigEndian.PutUint16(b[12:], 0x86dd)
	ip := b[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
	ip[6], ip[7] = 6, 64
	copy(ip[8:], netip.MustParseAddr("fd00::2").AsSlice())
	copy(ip[24:], netip.MustParseAddr("fd00::10").AsSlice())
	copy(b[54:], l4)
	return b
}

func arp() []byte {
	b := make([]byte, 14+28)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	binary.BigEndian.PutUint16(b[14:], 1)
	binary.BigEndian.PutUint16(b[16:], 0x0800)
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], 1)
	c := client.Addr().As4()
	copy(b[28:], c[:])
	v := vipTCP.Addr().As4()
	copy(b[38:], v[:])
	return b
}

func setU16(b []byte, off int, v uint16) []byte {
	binary.BigEndian.PutUint16(b[off:], v)
	return b
}

func setByte(b []byte, off int, v byte) []byte {
	b[off] = v
	return b
}

func pseudo(src, dst netip.Addr, proto uint8, n int) uint32 {
	s, d := src.As4(), dst.As4()
	w := func(hi, lo byte) uint32 { return uint32(hi)<<8 | uint32(lo) }
	return w(s[0], s[1]) + w(s[2], s[3]) + w(d[0], d[1]) + w(d[2], d[3]) + uint32(proto) + uint32(n)
}

func csum(b []byte, acc uint32) uint16 {
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
