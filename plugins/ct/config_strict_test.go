package ct

import (
	"strings"
	"testing"
)

// TestConfigRejectsUnknownFields: a misspelt key must not leave a default
// in place silently (the lb plugin and the supervisor refuse them too).
func TestConfigRejectsUnknownFields(t *testing.T) {
	for _, raw := range []string{`{"lifetimes": {"tpc": "1s"}}`, `{"gc": {"metod": "batch"}}`, `{"lifetime": {}}`} {
		if _, err := ParseConfig([]byte(raw)); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("config %s: error %v, want one naming the unknown field", raw, err)
		}
	}
}
