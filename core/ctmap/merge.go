package ctmap

import (
	"unsafe"

	"github.com/hotpath/hotpath/core/abi"
)

// Merge is the rule a live resize of a CT map (core/pin Snapshot.Merge)
// applies to an entry that packets of the old generation wrote into the
// old map after its last copy, while the new generation was writing the
// new map: the counters carry the old map's increase since that copy (so
// they end at least where they were before the resize), the lifetime and
// the report times are the later of the two, flags and TCP flags seen are
// or-ed, and the rest (NAT index, backend, identity) is the new map's. An
// entry the new map lacks is taken as it is.
func Merge(cur, now, base []byte) []byte {
	size := int(unsafe.Sizeof(abi.CTEntry{}))
	if len(now) != size || (cur != nil && len(cur) != size) || (base != nil && len(base) != size) {
		return nil // not a CT entry of this layout: leave the new map alone
	}
	n := entryOf(now)
	if cur == nil {
		return now
	}
	out := *entryOf(cur)
	var b abi.CTEntry
	if base != nil {
		b = *entryOf(base)
	}
	out.Packets += sub(n.Packets, b.Packets)
	out.Bytes += sub(n.Bytes, b.Bytes)
	mergeState(&out, n)
	return unsafe.Slice((*byte)(unsafe.Pointer(&out)), size)
}

// mergeState is what both merges do beyond the counters: the later
// lifetime and report times, the union of the flags and TCP flags seen.
func mergeState(out, n *abi.CTEntry) {
	out.Lifetime = max(out.Lifetime, n.Lifetime)
	out.Flags |= n.Flags
	out.TxFlagsSeen |= n.TxFlagsSeen
	out.RxFlagsSeen |= n.RxFlagsSeen
	out.LastTxReport = max(out.LastTxReport, n.LastTxReport)
	out.LastRxReport = max(out.LastRxReport, n.LastRxReport)
}

// sub is a counter's increase, 0 if it went down (an entry re-created).
func sub(now, base uint64) uint64 {
	if now < base {
		return now
	}
	return now - base
}

func entryOf(b []byte) *abi.CTEntry {
	var e abi.CTEntry
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e)), len(b)), b)
	return &e
}

// MergeMax is Merge for when the old map's values at the last copy are
// unknown (a resize finished by a restarted supervisor): each counter is
// the larger of the two maps', which is at least what it was before the
// resize since both started from that copy; it loses only the smaller
// side's increase during the switch.
func MergeMax(cur, now, _ []byte) []byte {
	size := int(unsafe.Sizeof(abi.CTEntry{}))
	if len(now) != size || (cur != nil && len(cur) != size) {
		return nil
	}
	if cur == nil {
		return now
	}
	n, out := entryOf(now), *entryOf(cur)
	out.Packets = max(out.Packets, n.Packets)
	out.Bytes = max(out.Bytes, n.Bytes)
	mergeState(&out, n)
	return unsafe.Slice((*byte)(unsafe.Pointer(&out)), size)
}
