package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// labTools are the commands the lab suite runs, with the Debian package
// that provides each. Like scripts/deps.sh: check, then apt-get install
// only what is missing.
var labTools = []struct{ cmd, pkg string }{
	{"ip", "iproute2"},
	{"ethtool", "ethtool"},
	{"iperf3", "iperf3"},
	{"nft", "nftables"},
	{"iptables-restore", "iptables"},
}

// EnsureTools installs the Debian packages of missing lab tools.
func EnsureTools(c *Context) error {
	var need []string
	for _, t := range labTools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			need = append(need, t.pkg)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("need root to apt-get install %s", strings.Join(need, " "))
	}
	c.Logf("installing %s", strings.Join(need, " "))
	for _, args := range [][]string{
		{"update", "-qq"},
		append([]string{"install", "-y", "-qq", "--no-install-recommends"}, need...),
	} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", args[0], err, tail(out, 800))
		}
	}
	return nil
}

// tail is the last n bytes of out, for error messages.
func tail(out []byte, n int) string {
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.TrimSpace(string(out))
}
