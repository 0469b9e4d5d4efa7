package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCommandsRefuseBadInputLocally: bad arguments and bad files are
// refused by the CLI itself, before a supervisor is asked: the state dir
// here has no socket, so reaching the network would fail differently.
func TestPolicyCommandsRefuseBadInputLocally(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: b}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: http}]\n"), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"endpoint", "add", "10.0.0.1", "--label", "novalue"}, `label "novalue": want k=v`},
		{[]string{"endpoint", "add", "not-an-ip"}, "want an IPv4 address"},
		{[]string{"endpoint", "add", "10.0.0.1", "--namespace", "Bad_NS"}, "namespace"},
		{[]string{"policy", "apply", "-f", bad}, "document 1 (b/a): spec.ingress[0].ports[0].port: named port"},
		{[]string{"policy", "apply", "-f", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"policy", "delete", "just-a-name"}, "want NAMESPACE/NAME"},
		{[]string{"monitor", "--type", "everything"}, `event type "everything"`},
	}
	for _, c := range cases {
		app := App()
		app.ExitErrHandler = nil
		args := append([]string{"hotpath", "--state-dir", dir}, c.args...)
		err := app.Run(interspersed(app, args))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "not reachable") {
			t.Errorf("%v: %v, want an error containing %q without contacting a supervisor", c.args, err, c.want)
		}
	}
}
