package pin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// ErrUnconvertible marks two layouts the default migration cannot map onto
// each other (a field that changed type, a different key): the plugin has
// to supply its own conversion, or the migration is refused.
var ErrUnconvertible = errors.New("layouts not convertible by field name")

// Converter turns values of one BTF layout into another by field name: a
// field present in both is copied, a field only the new layout has starts
// at zero, a field only the old one has is dropped. A field whose type
// changed (another size, encoding or element count) cannot be carried by
// name and makes NewConverter fail. Nested structs are matched field by
// field in turn.
type Converter struct {
	FromSize, ToSize int
	Added, Dropped   []string // dotted field names, for the log and --dry-run
	spans            []span
}

// span copies n bytes from offset src of the old value to dst of the new.
type span struct{ src, dst, n int }

// NewConverter plans the conversion of values of type from into type to.
func NewConverter(from, to btf.Type) (*Converter, error) {
	fs, err := btf.Sizeof(from)
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", describe(from), err)
	}
	ts, err := btf.Sizeof(to)
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", describe(to), err)
	}
	c := &Converter{FromSize: fs, ToSize: ts}
	if err := c.plan(from, to, 0, 0, ""); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnconvertible, err)
	}
	c.merge()
	return c, nil
}

// plan adds the spans that carry from (at byte offset so) into to (at do).
func (c *Converter) plan(from, to btf.Type, so, do int, path string) error {
	from, to = underlying(from), underlying(to)
	if sameType(from, to, 0) == "" {
		n, _ := btf.Sizeof(from)
		c.spans = append(c.spans, span{so, do, n})
		return nil
	}
	fs, ok1 := from.(*btf.Struct)
	ts, ok2 := to.(*btf.Struct)
	if !ok1 || !ok2 {
		return fmt.Errorf("field %s is %s, was %s", orRoot(path), describe(to), describe(from))
	}
	old := map[string]btf.Member{}
	for _, m := range fs.Members {
		if m.Name == "" || m.BitfieldSize != 0 {
			return fmt.Errorf("struct %s has an anonymous or bit field", orAnon(fs.Name))
		}
		old[m.Name] = m
	}
	for _, m := range ts.Members {
		if m.Name == "" || m.BitfieldSize != 0 {
			return fmt.Errorf("struct %s has an anonymous or bit field", orAnon(ts.Name))
		}
		name := join(path, m.Name)
		o, ok := old[m.Name]
		if !ok {
			c.Added = append(c.Added, name)
			continue
		}
		delete(old, m.Name)
		if err := c.plan(o.Type, m.Type, so+int(o.Offset.Bytes()), do+int(m.Offset.Bytes()), name); err != nil {
			return err
		}
	}
	for _, m := range fs.Members {
		if _, gone := old[m.Name]; gone {
			c.Dropped = append(c.Dropped, join(path, m.Name))
		}
	}
	return nil
}

// merge joins spans that continue each other, so converting a value that
// only grew at its end is one copy.
func (c *Converter) merge() {
	var out []span
	for _, s := range c.spans {
		if n := len(out); n > 0 && out[n-1].src+out[n-1].n == s.src && out[n-1].dst+out[n-1].n == s.dst {
			out[n-1].n += s.n
			continue
		}
		out = append(out, s)
	}
	c.spans = out
}

// Convert writes the conversion of src (FromSize bytes) into dst (ToSize
// bytes), zeroing what no field of src fills.
func (c *Converter) Convert(dst, src []byte) {
	clear(dst[:c.ToSize])
	for _, s := range c.spans {
		copy(dst[s.dst:s.dst+s.n], src[s.src:s.src+s.n])
	}
}

// Entry is the converter as a per-entry hook of a map copy: the key is kept
// as it is, the value converted into a new slice.
func (c *Converter) Entry(key, value []byte) ([]byte, []byte, error) {
	if len(value) != c.FromSize {
		return nil, nil, fmt.Errorf("value has %d bytes, layout has %d", len(value), c.FromSize)
	}
	out := make([]byte, c.ToSize)
	c.Convert(out, value)
	return key, out, nil
}

// String says what the conversion does, e.g. "adds rx_packets, rx_bytes".
func (c *Converter) String() string {
	var parts []string
	if len(c.Added) > 0 {
		parts = append(parts, "adds "+strings.Join(c.Added, ", "))
	}
	if len(c.Dropped) > 0 {
		parts = append(parts, "drops "+strings.Join(c.Dropped, ", "))
	}
	if len(parts) == 0 {
		return "same fields"
	}
	return strings.Join(parts, "; ")
}

// MapConverter plans the migration of the live map from into the layout of
// to: their keys must have the same layout (a migration never re-keys
// entries) and the values must convert by field name.
func MapConverter(from, to *ebpf.Map) (*Converter, error) {
	fk, fv, err := pinnedTypes(from)
	if err != nil {
		return nil, err
	}
	tk, tv, err := pinnedTypes(to)
	if err != nil {
		return nil, err
	}
	if fv == nil || tv == nil {
		return nil, fmt.Errorf("%w: a map has no BTF for its value", ErrUnconvertible)
	}
	if from.KeySize() != to.KeySize() {
		return nil, fmt.Errorf("%w: key size %d, was %d", ErrUnconvertible, to.KeySize(), from.KeySize())
	}
	if fk != nil && tk != nil {
		if d := sameType(fk, tk, 0); d != "" {
			return nil, fmt.Errorf("%w: key type %s", ErrUnconvertible, d)
		}
	}
	return NewConverter(fv, tv)
}

func underlying(t btf.Type) btf.Type {
	for {
		t = unqualified(t)
		td, ok := t.(*btf.Typedef)
		if !ok {
			return t
		}
		t = td.Type
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRoot(path string) string {
	if path == "" {
		return "value"
	}
	return path
}

// KeyDiff says how the keys of two specs differ ("" when they have the same
// layout): a migration converts values and never re-keys an entry.
func KeyDiff(from, to *ebpf.MapSpec) string {
	if from.KeySize != to.KeySize {
		return fmt.Sprintf("key size %d, was %d", to.KeySize, from.KeySize)
	}
	if from.Key != nil && to.Key != nil {
		if d := sameType(from.Key, to.Key, 0); d != "" {
			return "key type " + d
		}
	}
	return ""
}
