package maglev

import (
	"encoding/binary"
	"testing"
)

// murmur3Ref is a straightforward byte-oriented MurmurHash3_x86_32, used to
// pin HashTuple to the published algorithm (and so to its C twin).
func murmur3Ref(data []byte, seed uint32) uint32 {
	h := seed
	n := len(data)
	for len(data) >= 4 {
		h = murmurMix(h, binary.LittleEndian.Uint32(data))
		data = data[4:]
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= 0xcc9e2d51
		k = k<<15 | k>>17
		k *= 0x1b873593
		h ^= k
	}
	h ^= uint32(n)
	return murmurFmix32(h)
}

func TestMurmur3PublishedVectors(t *testing.T) {
	// Widely published MurmurHash3_x86_32 test vectors.
	for _, v := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0},
		{"", 1, 0x514e28b7},
		{"", 0xffffffff, 0x81f16f39},
		{"\x00\x00\x00\x00", 0, 0x2362f9de},
		{"aaaa", 0x9747b28c, 0x5a97808a},
		{"Hello, world!", 0x9747b28c, 0x24884cba},
		{"The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2fa826cd},
	} {
		if got := murmur3Ref([]byte(v.in), v.seed); got != v.want {
			t.Errorf("murmur3(%q, %#x) = %#x, want %#x", v.in, v.seed, got, v.want)
		}
	}
}

func TestHashTupleIsMurmur3(t *testing.T) {
	x := uint32(12345)
	for i := 0; i < 1000; i++ {
		x = x*1664525 + 1013904223
		saddr, daddr := x, x*2654435761
		sport, dport := uint16(x>>3), uint16(x>>17)
		proto, seed := uint8(x>>9), x^0xdeadbeef
		var buf [16]byte
		binary.LittleEndian.PutUint32(buf[0:], saddr)
		binary.LittleEndian.PutUint32(buf[4:], daddr)
		binary.LittleEndian.PutUint32(buf[8:], uint32(sport)<<16|uint32(dport))
		binary.LittleEndian.PutUint32(buf[12:], uint32(proto))
		if got, want := HashTuple(saddr, daddr, sport, dport, proto, seed), murmur3Ref(buf[:], seed); got != want {
			t.Fatalf("HashTuple = %#x, murmur3 = %#x", got, want)
		}
	}
}

// Golden values for the BPF C twin's unit test.
var hashTupleVectors = []struct {
	saddr, daddr uint32
	sport, dport uint16
	proto        uint8
	seed         uint32
	want         uint32
}{
	{0x0a000001, 0x0a000002, 12345, 80, 6, 0, 0x5349f310},
	{0x0a000001, 0x0a000002, 12345, 80, 17, 0, 0x2ea1fa13},
	{0xc0a80101, 0x08080808, 53000, 53, 17, 0x9747b28c, 0x051b6b5e},
	{0, 0, 0, 0, 0, 0, 0x8134cdf8},
	{0xffffffff, 0xffffffff, 0xffff, 0xffff, 0xff, 0xffffffff, 0xbb00fd69},
}

func TestHashTupleVectors(t *testing.T) {
	for _, v := range hashTupleVectors {
		got := HashTuple(v.saddr, v.daddr, v.sport, v.dport, v.proto, v.seed)
		if got != v.want {
			t.Errorf("HashTuple(%#08x, %#08x, %d, %d, %d, %#x) = %#08x, want %#08x",
				v.saddr, v.daddr, v.sport, v.dport, v.proto, v.seed, got, v.want)
		}
	}
}

func TestHashKey(t *testing.T) {
	// Length is mixed in, so zero-extension of the tail cannot collide.
	if hashKey("a", 0) == hashKey("a\x00", 0) {
		t.Error(`hashKey("a") == hashKey("a\x00")`)
	}
	if hashKey("10.0.0.1:80", 1) == hashKey("10.0.0.1:80", 2) {
		t.Error("seed has no effect")
	}
	// Pinned so a change that would reshuffle every table is noticed.
	for _, v := range []struct {
		key  string
		seed uint64
		want uint64
	}{
		{"", 0, 0},
		{"10.0.0.1:80", 0, 0x113ee1ee1e9e6202},
		{"backend-0123456789", 42, 0x8cf4135b3d827710},
	} {
		if got := hashKey(v.key, v.seed); got != v.want {
			t.Errorf("hashKey(%q, %d) = %#016x, want %#016x", v.key, v.seed, got, v.want)
		}
	}
}
