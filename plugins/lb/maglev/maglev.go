package maglev

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hotpath/hotpath/core/services"
)

// Backend is one member of a service's backend set.
type Backend struct {
	// ID is what the table stores and the datapath forwards to.
	ID uint32
	// Key is the backend's stable identity, e.g. "10.0.0.1:80". It alone
	// decides the backend's slot preferences, so it must not change while
	// the backend stays in the set (an ID or weight change must not move
	// its traffic around more than needed). Keys must be unique among
	// backends with a non-zero weight.
	Key string
	// Weight is the backend's relative share of the table; 0 excludes it.
	Weight uint32
}

// Primes are the supported table sizes: the service API's (core/service).
var Primes = services.TableSizes

// DefaultM is the table size used when none is configured.
const DefaultM = services.DefaultTableSize

// Errors returned by Build and BuildInto; they are wrapped with details,
// so test with errors.Is.
var (
	ErrInvalidSize     = errors.New("maglev: invalid table size")
	ErrNoBackends      = errors.New("maglev: no backend with a non-zero weight")
	ErrTooManyBackends = errors.New("maglev: more active backends than table slots")
	ErrDuplicateKey    = errors.New("maglev: duplicate backend key")
	ErrDstSize         = errors.New("maglev: destination length differs from table size")
)

// ValidSize reports whether m is one of Primes.
func ValidSize(m uint32) error {
	if slices.Contains(Primes, m) {
		return nil
	}
	return fmt.Errorf("%w %d: must be one of %v", ErrInvalidSize, m, Primes)
}

// Build returns a new table of m backend IDs for the backends with a
// non-zero weight. The result depends only on the set of (Key, ID, Weight)
// triples, m and seed — not on the order of backends — and is identical on
// every node and architecture.
func Build(backends []Backend, m uint32, seed uint32) ([]uint32, error) {
	if err := ValidSize(m); err != nil {
		return nil, err
	}
	dst := make([]uint32, m)
	if err := BuildInto(dst, backends, m, seed); err != nil {
		return nil, err
	}
	return dst, nil
}

// BuildInto is Build writing into dst, which must have length m. Callers
// that rebuild often (e.g. on every backend change) can reuse dst and so
// allocate only O(number of backends) scratch per build. On error dst is
// left unchanged.
func BuildInto(dst []uint32, backends []Backend, m, seed uint32) error {
	if err := ValidSize(m); err != nil {
		return err
	}
	if len(dst) != int(m) {
		return fmt.Errorf("%w: len(dst)=%d, m=%d", ErrDstSize, len(dst), m)
	}
	n := 0
	for i := range backends {
		if backends[i].Weight > 0 {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w (%d given)", ErrNoBackends, len(backends))
	}
	if n > int(m) {
		return fmt.Errorf("%w: %d active backends, m=%d", ErrTooManyBackends, n, m)
	}

	st := make([]cursor, 0, n)
	for i := range backends {
		if backends[i].Weight > 0 {
			st = append(st, cursor{idx: uint32(i), weight: backends[i].Weight})
		}
	}
	// Key order makes the result independent of the caller's order; it is
	// also the order of the first turns and of simultaneous ones.
	slices.SortFunc(st, func(a, b cursor) int {
		return strings.Compare(backends[a.idx].Key, backends[b.idx].Key)
	})
	for i := 1; i < len(st); i++ {
		if backends[st[i].idx].Key == backends[st[i-1].idx].Key {
			return fmt.Errorf("%w %q", ErrDuplicateKey, backends[st[i].idx].Key)
		}
	}
	for i := range st {
		key := backends[st[i].idx].Key
		st[i].pos = uint32(hashKey(key, offsetSeed(seed)) % uint64(m))
		st[i].skip = uint32(hashKey(key, skipSeed(seed))%uint64(m-1)) + 1
		st[i].phase = uint32(hashKey(key, phaseSeed(seed)) >> 32)
	}

	populate(dst, st)

	// populate stored cursor indices; turn them into backend IDs.
	for j, c := range dst {
		dst[j] = backends[st[c].idx].ID
	}
	return nil
}

// Lookup returns the backend ID for a packet hash: table[hash % len(table)].
// The BPF datapath must do exactly the same (a u32 modulo by M). table must
// be non-empty (Build never returns an empty table).
func Lookup(table []uint32, hash uint32) uint32 {
	return table[hash%uint32(len(table))]
}
