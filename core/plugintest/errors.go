package plugintest

import (
	"strings"
	"testing"
	"unicode"
)

// ClearError fails t unless err reads like every error of the project: a
// message, lowercase first, with no formatting accident, naming each of
// about. Fuzz targets of parsers use it as their property for rejected
// input.
func ClearError(t testing.TB, err error, about ...string) {
	t.Helper()
	msg := err.Error()
	if msg == "" || strings.Contains(msg, "%!") {
		t.Fatalf("unclear error %q", msg)
	}
	if r := []rune(msg)[0]; unicode.IsUpper(r) {
		t.Fatalf("error %q starts in uppercase", msg)
	}
	for _, a := range about {
		if !strings.Contains(msg, a) {
			t.Fatalf("error %q does not name %q", msg, a)
		}
	}
}
