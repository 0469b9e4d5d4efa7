package supervisor_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/internal/e2e"
)

// bpftoolMap is what `bpftool -j map show` prints that this test reads.
type bpftoolMap struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	BTFID int    `json:"btf_id"`
}

// noValueBTF are the map types the kernel refuses BTF for (their values
// are file descriptors or have no fixed layout): they can only be dumped
// as bytes.
var noValueBTF = map[ebpf.MapType]bool{
	ebpf.ProgramArray: true, ebpf.ArrayOfMaps: true, ebpf.HashOfMaps: true,
	ebpf.PerfEventArray: true, ebpf.RingBuf: true,
}

// noDump are the map types whose entries live on kernel objects (socket
// storage): they carry BTF, but no key walks them, so bpftool cannot dump
// them; `bpftool map show` still names their BTF.
var noDump = map[ebpf.MapType]bool{ebpf.SkStorage: true}

// Every map pinned under the supervisor's bpffs (shared maps and the
// plugins' own) carries BTF, so `bpftool map dump pinned` prints fields;
// those of a type the kernel refuses BTF for are listed.
func TestPrivilegedPinnedMapsCarryBTF(t *testing.T) {
	env := e2e.New(t, "a", "b")
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"), env.PluginFlag("policy"))
	b := env.Lab.Pods["b"]
	if _, err := env.CLI("lb", "service", "add", "10.96.0.10:80/tcp", "--backend", b.IP.String()+":8080"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CLI("endpoint", "add", b.IP.String(), "--namespace", "t", "--label", "app=b"); err != nil {
		t.Fatal(err)
	}
	checked := 0
	err := filepath.WalkDir(env.Lab.BPFFS, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return nil // a program or link pin
		}
		typ := m.Type()
		m.Close()
		out, err := exec.Command("bpftool", "-j", "map", "show", "pinned", path).Output()
		if err != nil {
			return errors.Join(err, errors.New(path))
		}
		var info bpftoolMap
		if err := json.Unmarshal(out, &info); err != nil {
			return err
		}
		rel, _ := filepath.Rel(env.Lab.BPFFS, path)
		if noValueBTF[typ] {
			t.Logf("%s (%s): the kernel takes no BTF for this map type", rel, typ)
			return nil
		}
		checked++
		if info.BTFID == 0 {
			t.Errorf("%s (%s): pinned without BTF; bpftool map dump prints bytes only", rel, typ)
			return nil
		}
		if noDump[typ] {
			return nil
		}
		dump, err := exec.Command("bpftool", "-j", "map", "dump", "pinned", path).Output()
		if err != nil {
			return errors.Join(err, errors.New(path))
		}
		var elems []map[string]any
		if err := json.Unmarshal(dump, &elems); err != nil {
			return err
		}
		for _, e := range elems {
			if _, ok := e["formatted"]; !ok {
				t.Errorf("%s: bpftool dump has no formatted fields: %v", rel, e)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no pinned map found")
	}
}
