package cli

import (
	"reflect"
	"testing"
)

func TestInterspersedFlagsAfterPositionals(t *testing.T) {
	app := App()
	cases := []struct{ in, want []string }{
		{[]string{"hotpath", "--bpffs", "/b", "plugin", "upgrade", "ct", "--binary", "/x", "--health-window", "1s"},
			[]string{"hotpath", "--bpffs", "/b", "plugin", "upgrade", "--binary", "/x", "--health-window", "1s", "ct"}},
		{[]string{"hotpath", "plugin", "upgrade", "--binary=/x", "ct", "-o", "json"},
			[]string{"hotpath", "plugin", "upgrade", "--binary=/x", "-o", "json", "ct"}},
		{[]string{"hotpath", "ct", "list", "-o", "json"}, []string{"hotpath", "ct", "list", "-o", "json"}},
		{[]string{"hotpath", "status"}, []string{"hotpath", "status"}},
	}
	for _, c := range cases {
		if got := interspersed(app, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("interspersed(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
