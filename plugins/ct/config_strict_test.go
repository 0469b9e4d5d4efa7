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

// TestConfigAccounting: on unless the config turns it off; a value that is
// not a boolean is refused.
func TestConfigAccounting(t *testing.T) {
	if c, err := ParseConfig(nil); err != nil || !c.Accounting {
		t.Errorf("default: accounting %v, %v; want on", c.Accounting, err)
	}
	if c, err := ParseConfig([]byte(`{"accounting": false}`)); err != nil || c.Accounting {
		t.Errorf("off: accounting %v, %v; want off", c.Accounting, err)
	}
	if _, err := ParseConfig([]byte(`{"accounting": "off"}`)); err == nil || !strings.Contains(err.Error(), "accounting") {
		t.Errorf(`"off" as a string: error %v, want one naming accounting`, err)
	}
}
