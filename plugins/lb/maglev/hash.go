package maglev

import "math/bits"

// HashTuple is the packet hash shared by the control plane and the BPF
// datapath. It is exactly MurmurHash3_x86_32 (Appleby) with the given seed
// over the 16 bytes formed by four little-endian 32-bit words
//
//	w0 = saddr
//	w1 = daddr
//	w2 = sport<<16 | dport
//	w3 = proto
//
// where addresses and ports are host-order integers (10.0.0.1 is
// 0x0a000001, port 80 is 80): in BPF C apply bpf_ntohl/bpf_ntohs to the
// header fields first. All arithmetic is on u32 and wraps. In C:
//
//	static __always_inline __u32 mix(__u32 h, __u32 k) {
//		k *= 0xcc9e2d51; k = (k << 15) | (k >> 17); k *= 0x1b873593;
//		h ^= k;          h = (h << 13) | (h >> 19); return h * 5 + 0xe6546b64;
//	}
//	h = seed;
//	h = mix(h, saddr); h = mix(h, daddr);
//	h = mix(h, ((__u32)sport << 16) | dport); h = mix(h, proto);
//	h ^= 16;                                  /* input length in bytes */
//	h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16;
//	backend = table[h % M];
//
// Murmur3 is used because it is well studied, has published test vectors
// to check the C twin against, and needs only multiplies, xors and
// rotates — no tables or loops the verifier would have to bound.
func HashTuple(saddr, daddr uint32, sport, dport uint16, proto uint8, seed uint32) uint32 {
	h := seed
	h = murmurMix(h, saddr)
	h = murmurMix(h, daddr)
	h = murmurMix(h, uint32(sport)<<16|uint32(dport))
	h = murmurMix(h, uint32(proto))
	h ^= 16
	return murmurFmix32(h)
}

// murmurMix folds one 4-byte block into the MurmurHash3_x86_32 state.
func murmurMix(h, k uint32) uint32 {
	k *= 0xcc9e2d51
	k = bits.RotateLeft32(k, 15)
	k *= 0x1b873593
	h ^= k
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

// murmurFmix32 is MurmurHash3's 32-bit finaliser (full avalanche).
func murmurFmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// Salts for the three independent key hashes (offset, skip, phase);
// arbitrary constants that only need to differ so the three are
// uncorrelated.
const (
	offsetSalt = 0x9e3779b97f4a7c15
	skipSalt   = 0xc2b2ae3d27d4eb4f
	phaseSalt  = 0x165667b19e3779f9
)

func offsetSeed(seed uint32) uint64 { return uint64(seed) ^ offsetSalt }
func skipSeed(seed uint32) uint64   { return uint64(seed) ^ skipSalt }
func phaseSeed(seed uint32) uint64  { return uint64(seed) ^ phaseSalt }

// Multipliers for hashKey (odd 64-bit constants with well-mixed bits).
const (
	kp1 = 0x9e3779b185ebca87
	kp2 = 0xc2b2ae3d27d4eb4f
	kp3 = 0x165667b19e3779f9
)

// hashKey is the seeded 64-bit hash of backend keys. It only runs in the
// control plane, but every node must agree on it, so it is fixed here:
//
//	h = seed*kp1 ^ len(key)*kp2
//	for each 8-byte chunk c of key (little-endian; the last chunk is
//	the 1..7 remaining bytes zero-extended, if any):
//		h ^= rotl64(c*kp2, 31) * kp1
//		h = rotl64(h, 27)*kp1 + kp3
//	return fmix64(h)          // MurmurHash3's 64-bit finaliser
//
// Mixing the length in first keeps "a" and "a\x00" apart despite the
// zero-extension. With seed the Build seed zero-extended to 64 bits:
//
//	offset = hashKey(key, seed^offsetSalt) % M
//	skip   = hashKey(key, seed^skipSalt) % (M-1) + 1
//	phase  = hashKey(key, seed^phaseSalt) >> 32   (weights; see populate)
func hashKey(key string, seed uint64) uint64 {
	h := seed*kp1 ^ uint64(len(key))*kp2
	for len(key) >= 8 {
		c := uint64(key[0]) | uint64(key[1])<<8 | uint64(key[2])<<16 | uint64(key[3])<<24 |
			uint64(key[4])<<32 | uint64(key[5])<<40 | uint64(key[6])<<48 | uint64(key[7])<<56
		h = keyRound(h, c)
		key = key[8:]
	}
	if len(key) > 0 {
		var c uint64
		for i := len(key) - 1; i >= 0; i-- {
			c = c<<8 | uint64(key[i])
		}
		h = keyRound(h, c)
	}
	return fmix64(h)
}

func keyRound(h, c uint64) uint64 {
	h ^= bits.RotateLeft64(c*kp2, 31) * kp1
	return bits.RotateLeft64(h, 27)*kp1 + kp3
}

// fmix64 is MurmurHash3's 64-bit finaliser.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
