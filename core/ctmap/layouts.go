package ctmap

import (
	"unsafe"
)

// MergeLayouts is Merge for CT values of either layout (both sides in the
// same one): the fields of layout 1 merge by Merge's rule, and layout 2's
// reply counters carry the old map's increase too, its last_seen the later
// of the two. A schema migration merges with it.
func MergeLayouts(cur, now, base []byte) []byte {
	if len(now) != layout2Size {
		return Merge(cur, now, base)
	}
	if (cur != nil && len(cur) != layout2Size) || (base != nil && len(base) != layout2Size) {
		return nil // not a CT entry of this layout: leave the new map alone
	}
	if cur == nil {
		return now
	}
	var c, n, b Entry
	decode(&c, cur)
	decode(&n, now)
	if base != nil {
		decode(&b, base)
	}
	head := Merge(cur[:layout1Size], now[:layout1Size], prefix(base))
	if head == nil {
		return nil
	}
	out := c
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out)), layout1Size), head)
	out.RxPackets += sub(n.RxPackets, b.RxPackets)
	out.RxBytes += sub(n.RxBytes, b.RxBytes)
	out.LastSeen = max(out.LastSeen, n.LastSeen)
	return unsafe.Slice((*byte)(unsafe.Pointer(&out)), layout2Size)
}

func prefix(b []byte) []byte {
	if b == nil {
		return nil
	}
	return b[:layout1Size]
}

// Fixup is the part of a migration of CT values between layouts from and
// to that field names cannot say, applied to a value already converted by
// name (pin.Converter); nil when there is none. Into layout 2, last_seen
// starts at the latest report time layout 1 kept, the best estimate of the
// last packet it has, rather than at 0 (which would read as "never").
func Fixup(from, to uint32) func(value []byte) {
	if from == 1 && to == 2 {
		return func(value []byte) {
			if len(value) != layout2Size {
				return
			}
			e := (*Entry)(unsafe.Pointer(&value[0]))
			if e.LastSeen == 0 {
				e.LastSeen = max(e.LastTxReport, e.LastRxReport, e.Created)
			}
		}
	}
	return nil
}
