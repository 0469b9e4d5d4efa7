package lb

import (
	"math"
	"slices"
	"testing"
)

func TestSlotCountsExact(t *testing.T) {
	for _, c := range []struct {
		w    []uint16
		want []int
	}{
		{nil, []int{}},
		{[]uint16{1}, []int{1}},
		{[]uint16{1, 1, 1}, []int{1, 1, 1}},
		{[]uint16{1, 2, 3}, []int{1, 2, 3}},
		{[]uint16{100, 100}, []int{1, 1}},      // reduced by the gcd
		{[]uint16{10, 20, 30}, []int{1, 2, 3}}, // likewise
		{[]uint16{65535, 65535}, []int{1, 1}},
		{[]uint16{4096}, []int{1}},
	} {
		if got := SlotCounts(c.w, MaxSlots); !slices.Equal(got, c.want) {
			t.Errorf("SlotCounts(%v) = %v, want %v", c.w, got, c.want)
		}
	}
}

func TestSlotCountsApportioned(t *testing.T) {
	for _, w := range [][]uint16{
		{1, 65535},
		{3, 5000, 7000, 65535},
		{5000, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{65535, 65534, 65533},
		func() []uint16 { // 999 backends of weight 1 and one of 10000
			w := make([]uint16, 1000)
			for i := range w {
				w[i] = 1
			}
			w[0] = 10000
			return w
		}(),
	} {
		got := SlotCounts(w, MaxSlots)
		sum, total := 0, 0.0
		for i, n := range got {
			if n < 1 {
				t.Fatalf("weights %v: backend %d got %d slots", w[:min(len(w), 5)], i, n)
			}
			sum += n
			total += float64(w[i])
		}
		if sum != MaxSlots {
			t.Fatalf("weights %v: %d slots, want %d", w[:min(len(w), 5)], sum, MaxSlots)
		}
		// Sainte-Laguë keeps every share within a slot of exact, give or
		// take what the floor of one slot each lifts the small ones by.
		lifted := 0.0
		for _, x := range w {
			lifted += max(0, 1-float64(x)/total*MaxSlots)
		}
		for i, n := range got {
			exact := float64(w[i]) / total * MaxSlots
			if math.Abs(float64(n)-exact) > 1+lifted && n != 1 {
				t.Errorf("weights %v: backend %d has %d slots, exact share %.2f", w[:min(len(w), 5)], i, n, exact)
			}
		}
	}
}

func TestSlotCountsMoreBackendsThanSlots(t *testing.T) {
	w := make([]uint16, 10)
	for i := range w {
		w[i] = uint16(i + 1)
	}
	got := SlotCounts(w, 4)
	for i, n := range got {
		if n != 1 {
			t.Fatalf("backend %d has %d slots; with more backends than slots each gets one", i, n)
		}
	}
}

func TestFillSlots(t *testing.T) {
	got := FillSlots([]uint16{2, 1, 3}, MaxSlots)
	if want := []int{0, 0, 1, 2, 2, 2}; !slices.Equal(got, want) {
		t.Fatalf("FillSlots = %v, want %v", got, want)
	}
	if got := FillSlots(nil, MaxSlots); len(got) != 0 {
		t.Fatalf("FillSlots(nil) = %v", got)
	}
}
