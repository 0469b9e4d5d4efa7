package nat_test

import (
	"testing"

	"github.com/hotpath/hotpath/internal/e2e"
)

// TestMain removes the binaries internal/e2e built for this package's tests.
func TestMain(m *testing.M) { e2e.Main(m) }
