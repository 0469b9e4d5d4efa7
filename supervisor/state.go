package supervisor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hotpath/hotpath/supervisor/host"
)

// State is what a restarted supervisor needs to re-adopt the node: written
// atomically to <state-dir>/state.json after every change. The generation
// numbers in it are a snapshot of gens, which owns them (see gens.go).
type State struct {
	ActiveGen uint32                  `json:"active_generation"`
	NextGen   uint32                  `json:"next_generation"`
	Plugins   map[string]*PluginState `json:"plugins"`
	Upgrade   *UpgradeState           `json:"upgrade,omitempty"`
	Remap     *RemapState             `json:"remap,omitempty"` // a live resize or migration in flight (remaptx.go)
	// MapSizes are the sizes live resizes gave shared maps: they hold over
	// restarts while the config's map_sizes says what it said then.
	MapSizes map[string]*MapSize `json:"map_sizes,omitempty"`
}

// MapSize is a shared map's size set by a live resize.
type MapSize struct {
	Size       uint32 `json:"max_entries"`
	Configured uint32 `json:"configured,omitempty"` // the config's map_sizes value at the time (0: none)
}

// PluginState is one plugin's part of State.
type PluginState struct {
	Version    string            `json:"version"`
	Path       string            `json:"path"`
	SHA256     string            `json:"sha256,omitempty"` // of Path, as configured or upgraded to
	Reattach   *host.Reattach    `json:"reattach,omitempty"`
	Generation uint32            `json:"generation"` // generation its programs were loaded for
	Programs   map[string]string `json:"programs"`   // slot -> pin path
	// Cgroup are the programs attached for it to CgroupPath (cgroup.go):
	// attach point -> pin path.
	Cgroup     map[string]string `json:"cgroup,omitempty"`
	CgroupPath string            `json:"cgroup_path,omitempty"`
	ConfigSHA  string            `json:"config_sha256,omitempty"`
	Restarts   int               `json:"restarts"`
	// Upgraded is the configured binary an upgrade replaced: while the
	// config still names it, Path (the upgraded binary) is what runs.
	Upgraded *Binary `json:"upgraded_from,omitempty"`
}

// Binary is a plugin binary and its expected checksum.
type Binary struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// LoadState reads the state file; a missing file is an empty state.
func LoadState(dir string) (*State, error) {
	s := &State{Plugins: map[string]*PluginState{}}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", statePath(dir), err)
	}
	if s.Plugins == nil {
		s.Plugins = map[string]*PluginState{}
	}
	return s, nil
}

// Save writes the state atomically.
func (s *State) Save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := writeAtomic(statePath(dir), b); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data so that a crash at any point leaves
// either the old file or the new one, whole: write a temporary file, fsync
// it, rename it over path, fsync the directory that holds the rename.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// configSHA identifies a plugin's config: programs loaded with another one
// must be loaded again. Whitespace does not count; no config is "".
func configSHA(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}
