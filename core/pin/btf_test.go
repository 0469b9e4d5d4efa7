package pin_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/lab"
)

// swapped returns a struct of the same name and size as s whose first two
// fields trade places: same sizes, another layout.
func swapped(t *testing.T, typ btf.Type) btf.Type {
	t.Helper()
	s, ok := btf.UnderlyingType(typ).(*btf.Struct)
	if !ok || len(s.Members) < 2 {
		t.Fatalf("%v is not a struct of two fields or more", typ)
	}
	c := btf.Copy(s).(*btf.Struct)
	c.Members[0].Name, c.Members[1].Name = c.Members[1].Name, c.Members[0].Name
	return c
}

func TestPrivilegedCheckComparesKeyAndValueBTF(t *testing.T) {
	lab.Privileged(t)
	specs, err := pin.SharedSpecs()
	if err != nil {
		t.Fatal(err)
	}
	spec := specs[abi.MapCT4]
	create := func(s *ebpf.MapSpec) *ebpf.Map {
		t.Helper()
		s.Pinning = ebpf.PinNone
		m, err := ebpf.NewMap(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	if err := pin.Check(spec, create(spec.Copy())); err != nil {
		t.Fatalf("a map created from its own spec: %v", err)
	}
	cases := []struct {
		name string
		edit func(s *ebpf.MapSpec)
		want string
	}{
		{"key fields swapped", func(s *ebpf.MapSpec) { s.Key = swapped(t, s.Key) }, "key type"},
		{"value fields swapped", func(s *ebpf.MapSpec) { s.Value = swapped(t, s.Value) }, "value type"},
		{"no btf", func(s *ebpf.MapSpec) { s.Key, s.Value = nil, nil }, "no BTF"},
	}
	for _, c := range cases {
		s := spec.Copy()
		c.edit(s)
		if s.KeySize != spec.KeySize || s.ValueSize != spec.ValueSize {
			t.Fatalf("%s: test changed a size", c.name)
		}
		err := pin.Check(spec, create(s))
		if !errors.Is(err, pin.ErrIncompatible) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want an incompatibility naming %q", c.name, err, c.want)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
}
