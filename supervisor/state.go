package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hotpath/hotpath/supervisor/host"
)

// State is what a restarted supervisor needs to re-adopt the node: written
// atomically (write + rename) to <state-dir>/state.json after every change.
type State struct {
	ActiveGen uint32                  `json:"active_generation"`
	NextGen   uint32                  `json:"next_generation"`
	Plugins   map[string]*PluginState `json:"plugins"`
	Upgrade   *UpgradeState           `json:"upgrade,omitempty"`
}

// PluginState is one plugin's part of State.
type PluginState struct {
	Version    string            `json:"version"`
	Path       string            `json:"path"`
	Reattach   *host.Reattach    `json:"reattach,omitempty"`
	Generation uint32            `json:"generation"` // generation its programs were loaded for
	Programs   map[string]string `json:"programs"`   // slot -> pin path
	Restarts   int               `json:"restarts"`
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
		return err
	}
	tmp := statePath(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, statePath(dir)); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
