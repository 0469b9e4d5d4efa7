package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/plugin"
)

// Cgroup programs: a plugin's Load may name programs for cgroup attach
// points (LoadResponse.Cgroup, e.g. the lb plugin's socket LB). The
// supervisor attaches them to the cgroup of its config with links pinned
// under links/cgroup/<plugin>/<point>, so they stay attached while the
// plugin crashes, restarts or is upgraded, and while the supervisor itself
// is away. A later Load replaces each program with one link update (atomic:
// every connect runs the old or the new program); a point the plugin no
// longer names is detached.

// DefaultCgroup is the cgroup v2 cgroup programs attach to when the config
// names none: the root of the unified hierarchy, so every process of the
// node is covered, as Cilium's socket LB does by default.
const DefaultCgroup = "/sys/fs/cgroup"

// cgroupLinkDir holds plugin name's pinned cgroup links.
func (s *Supervisor) cgroupLinkDir(name string) string {
	return filepath.Join(s.layout.Links(), "cgroup", name)
}

// checkCgroup refuses a Load answer with unknown attach points, or with
// cgroup programs while the configured cgroup is no cgroup v2 directory,
// before anything changes.
func (s *Supervisor) checkCgroup(resp *plugin.LoadResponse) error {
	if len(resp.Cgroup) == 0 {
		return nil
	}
	for point := range resp.Cgroup {
		if _, err := plugin.CgroupAttachType(point); err != nil {
			return err
		}
	}
	return isCgroup2(s.cfg.Cgroup)
}

func isCgroup2(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("cgroup %s: not a cgroup v2 directory", path)
	}
	return nil
}

// syncCgroup makes pins (attach point -> program pin) the cgroup programs of
// plugin name: updates the links of points it had, attaches new points,
// detaches points it no longer names. Links attached to another cgroup
// (the config changed) are detached first. Callers hold mu.
func (s *Supervisor) syncCgroup(name string, pins map[string]string) error {
	ps := s.state.Plugins[name]
	dir := s.cgroupLinkDir(name)
	if ps.CgroupPath != "" && ps.CgroupPath != s.cfg.Cgroup {
		if err := detachCgroup(dir, nil); err != nil {
			return err
		}
	}
	for point, path := range pins {
		if err := s.attachCgroup(filepath.Join(dir, point), point, path); err != nil {
			return fmt.Errorf("plugin %s: %w", name, err)
		}
	}
	if err := detachCgroup(dir, pins); err != nil {
		return err
	}
	ps.Cgroup, ps.CgroupPath = pins, ""
	if len(pins) > 0 {
		ps.CgroupPath = s.cfg.Cgroup
	}
	return nil
}

// attachCgroup points the link pinned at lp to the program pinned at path,
// creating and pinning the link if there is none.
func (s *Supervisor) attachCgroup(lp, point, path string) error {
	typ, err := plugin.CgroupAttachType(point)
	if err != nil {
		return err
	}
	prog, err := ebpf.LoadPinnedProgram(path, nil)
	if err != nil {
		return fmt.Errorf("open cgroup program %s: %w", path, err)
	}
	defer prog.Close()
	if l, err := link.LoadPinnedLink(lp, nil); err == nil {
		defer l.Close()
		if err := l.Update(prog); err != nil {
			return fmt.Errorf("update cgroup link %s: %w", point, err)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open cgroup link %s: %w", lp, err)
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: s.cfg.Cgroup, Attach: typ, Program: prog})
	if err != nil {
		return fmt.Errorf("attach cgroup %s %s: %w", s.cfg.Cgroup, point, err)
	}
	defer l.Close()
	if err := os.MkdirAll(filepath.Dir(lp), 0o700); err != nil {
		l.Close()
		return fmt.Errorf("create %s: %w", filepath.Dir(lp), err)
	}
	if err := l.Pin(lp); err != nil {
		return fmt.Errorf("pin cgroup link %s: %w", point, err)
	}
	return nil
}

// detachCgroup removes the links under dir whose point keep does not name;
// the last reference gone, the kernel detaches the program.
func detachCgroup(dir string, keep map[string]string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list cgroup links: %w", err)
	}
	for _, e := range ents {
		if _, ok := keep[e.Name()]; ok {
			continue
		}
		lp := filepath.Join(dir, e.Name())
		l, err := link.LoadPinnedLink(lp, nil)
		if err != nil {
			return fmt.Errorf("open cgroup link %s: %w", lp, err)
		}
		err = l.Unpin()
		l.Close()
		if err != nil {
			return fmt.Errorf("detach cgroup link %s: %w", lp, err)
		}
	}
	return nil
}
