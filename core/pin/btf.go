package pin

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// mapInfo is the head of the kernel's struct bpf_map_info up to the BTF type
// ids of key and value, which ebpf.MapInfo does not expose.
type mapInfo struct {
	Type, ID, KeySize, ValueSize, MaxEntries, Flags uint32
	Name                                            [16]byte
	Ifindex, VmlinuxValueTypeID                     uint32
	NetnsDev, NetnsIno                              uint64
	BTFID, KeyTypeID, ValueTypeID, VmlinuxID        uint32
	MapExtra                                        uint64
}

// objGetInfoByFD is BPF_OBJ_GET_INFO_BY_FD.
const objGetInfoByFD = 15

func readMapInfo(m *ebpf.Map) (mapInfo, error) {
	var info mapInfo
	attr := struct {
		FD, Len uint32
		Info    uint64
	}{FD: uint32(m.FD()), Len: uint32(unsafe.Sizeof(info)), Info: uint64(uintptr(unsafe.Pointer(&info)))}
	_, _, errno := unix.Syscall(unix.SYS_BPF, objGetInfoByFD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return info, fmt.Errorf("map info: %w", errno)
	}
	return info, nil
}

// pinnedTypes returns the BTF types the kernel holds for m's key and value;
// nil when m was created without BTF.
func pinnedTypes(m *ebpf.Map) (key, value btf.Type, err error) {
	info, err := readMapInfo(m)
	if err != nil || info.BTFID == 0 {
		return nil, nil, err
	}
	h, err := btf.NewHandleFromID(btf.ID(info.BTFID))
	if err != nil {
		return nil, nil, fmt.Errorf("map btf %d: %w", info.BTFID, err)
	}
	defer h.Close()
	spec, err := h.Spec(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("map btf %d: %w", info.BTFID, err)
	}
	if info.KeyTypeID != 0 {
		if key, err = spec.TypeByID(btf.TypeID(info.KeyTypeID)); err != nil {
			return nil, nil, fmt.Errorf("map btf key type: %w", err)
		}
	}
	if value, err = spec.TypeByID(btf.TypeID(info.ValueTypeID)); err != nil {
		return nil, nil, fmt.Errorf("map btf value type: %w", err)
	}
	return key, value, nil
}

// typedData are the map types created with BTF for key and value.
var typedData = map[ebpf.MapType]bool{
	ebpf.Hash: true, ebpf.Array: true, ebpf.LRUHash: true, ebpf.PerCPUHash: true,
	ebpf.PerCPUArray: true, ebpf.LRUCPUHash: true, ebpf.LPMTrie: true,
}

// checkBTF names how the BTF of a pinned map's key and value differs from
// the spec's: two layouts of the same size are still different maps.
func checkBTF(spec *ebpf.MapSpec, m *ebpf.Map) ([]string, error) {
	if spec.Key == nil && spec.Value == nil {
		return nil, nil
	}
	key, value, err := pinnedTypes(m)
	if err != nil {
		return nil, err
	}
	if key == nil && value == nil {
		// The library drops BTF where the kernel refuses it (maps of maps,
		// prog arrays); plain data maps always carry it.
		if typedData[spec.Type] {
			return []string{"pinned map has no BTF for its key and value"}, nil
		}
		return nil, nil
	}
	var diffs []string
	if spec.Key != nil {
		if d := sameType(spec.Key, key, 0); d != "" {
			diffs = append(diffs, "key type "+d)
		}
	}
	if spec.Value != nil {
		if d := sameType(spec.Value, value, 0); d != "" {
			diffs = append(diffs, "value type "+d)
		}
	}
	return diffs, nil
}

// sameType compares two BTF types by layout and names; it returns what
// differs, or "". Qualifiers do not matter; pointers compare by target name.
func sameType(want, got btf.Type, depth int) string {
	want, got = unqualified(want), unqualified(got)
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("is %v, want %v", got, want)
	}
	if depth > 16 {
		return ""
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return fmt.Sprintf("is %s, want %s", describe(got), describe(want))
	}
	switch w := want.(type) {
	case *btf.Int:
		g := got.(*btf.Int)
		if w.Size != g.Size || w.Encoding != g.Encoding {
			return fmt.Sprintf("is %s, want %s", describe(got), describe(want))
		}
	case *btf.Typedef:
		g := got.(*btf.Typedef)
		if w.Name != g.Name {
			return fmt.Sprintf("is %s, want %s", describe(got), describe(want))
		}
		return sameType(w.Type, g.Type, depth+1)
	case *btf.Array:
		g := got.(*btf.Array)
		if w.Nelems != g.Nelems {
			return fmt.Sprintf("has %d elements, want %d", g.Nelems, w.Nelems)
		}
		return sameType(w.Type, g.Type, depth+1)
	case *btf.Struct:
		g := got.(*btf.Struct)
		return sameMembers(w.Name, w.Size, w.Members, g.Name, g.Size, g.Members, depth)
	case *btf.Union:
		g := got.(*btf.Union)
		return sameMembers(w.Name, w.Size, w.Members, g.Name, g.Size, g.Members, depth)
	case *btf.Enum:
		g := got.(*btf.Enum)
		if w.Size != g.Size || w.Signed != g.Signed || len(w.Values) != len(g.Values) {
			return fmt.Sprintf("is %s, want %s", describe(got), describe(want))
		}
		for i := range w.Values {
			if w.Values[i] != g.Values[i] {
				return fmt.Sprintf("enum %s value %s, want %s", w.Name, g.Values[i].Name, w.Values[i].Name)
			}
		}
	case *btf.Pointer:
		if describe(unqualified(w.Target)) != describe(unqualified(got.(*btf.Pointer).Target)) {
			return fmt.Sprintf("is %s, want %s", describe(got), describe(want))
		}
	default:
		if want.TypeName() != got.TypeName() {
			return fmt.Sprintf("is %s, want %s", describe(got), describe(want))
		}
	}
	return ""
}

func sameMembers(wname string, wsize uint32, wm []btf.Member, gname string, gsize uint32, gm []btf.Member, depth int) string {
	if wname != gname || wsize != gsize || len(wm) != len(gm) {
		return fmt.Sprintf("is %s (%d bytes, %d fields), want %s (%d bytes, %d fields)", orAnon(gname), gsize, len(gm), orAnon(wname), wsize, len(wm))
	}
	for i := range wm {
		w, g := wm[i], gm[i]
		if w.Name != g.Name || w.Offset != g.Offset || w.BitfieldSize != g.BitfieldSize {
			return fmt.Sprintf("%s field %d is %s at bit %d, want %s at bit %d", orAnon(wname), i, g.Name, g.Offset, w.Name, w.Offset)
		}
		if d := sameType(w.Type, g.Type, depth+1); d != "" {
			return fmt.Sprintf("%s.%s %s", orAnon(wname), w.Name, d)
		}
	}
	return ""
}

func unqualified(t btf.Type) btf.Type {
	for {
		switch q := t.(type) {
		case *btf.Const:
			t = q.Type
		case *btf.Volatile:
			t = q.Type
		case *btf.Restrict:
			t = q.Type
		case *btf.TypeTag:
			t = q.Type
		default:
			return t
		}
	}
}

func describe(t btf.Type) string {
	if t == nil {
		return "nothing"
	}
	name := t.TypeName()
	if name == "" {
		name = "anonymous"
	}
	if sz, err := btf.Sizeof(t); err == nil {
		return fmt.Sprintf("%T %s (%d bytes)", t, name, sz)
	}
	return fmt.Sprintf("%T %s", t, name)
}

func orAnon(n string) string {
	if n == "" {
		return "anonymous struct"
	}
	return n
}
