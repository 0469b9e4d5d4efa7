package lb

import "container/heap"

// MaxSlots bounds the random-selection slots of one service. Weights are
// reduced by their greatest common divisor first, so equal weights use one
// slot per backend; only uneven weights summing beyond MaxSlots are
// apportioned (each backend still gets at least one slot, which also keeps
// the service's backend set readable back from lb4_slots). lb4_slots is
// shared by all services, so this keeps one service from filling it.
const MaxSlots = 4096

// SlotCounts returns how many random-selection slots each backend gets, in
// proportion to weights: exactly when the reduced weights sum to at most
// limit, else limit slots (or one per backend, if there are more) shared out
// by the Sainte-Laguë method on top of one slot each.
func SlotCounts(weights []uint16, limit int) []int {
	out := make([]int, len(weights))
	if len(weights) == 0 {
		return out
	}
	g := 0
	for _, w := range weights {
		g = gcd(g, int(w))
	}
	total := 0
	for i, w := range weights {
		out[i] = int(w) / g
		total += out[i]
	}
	if total <= limit {
		return out
	}
	h := &slotHeap{w: weights, n: out}
	for i := range out {
		out[i] = 1
		h.idx = append(h.idx, i)
	}
	heap.Init(h)
	for left := limit - len(weights); left > 0; left-- {
		i := h.idx[0]
		out[i]++
		heap.Fix(h, 0)
	}
	return out
}

// FillSlots returns the slot table of a service: slot -> index into
// weights, each backend repeated SlotCounts times.
func FillSlots(weights []uint16, limit int) []int {
	var out []int
	for i, n := range SlotCounts(weights, limit) {
		for range n {
			out = append(out, i)
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// slotHeap orders backends by Sainte-Laguë priority w/(2n+1), highest
// first, ties to the lower index, compared exactly in integers.
type slotHeap struct {
	w   []uint16
	n   []int
	idx []int
}

func (h *slotHeap) Len() int { return len(h.idx) }
func (h *slotHeap) Less(a, b int) bool {
	i, j := h.idx[a], h.idx[b]
	pi := int64(h.w[i]) * int64(2*h.n[j]+1)
	pj := int64(h.w[j]) * int64(2*h.n[i]+1)
	if pi != pj {
		return pi > pj
	}
	return i < j
}
func (h *slotHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *slotHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *slotHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}
