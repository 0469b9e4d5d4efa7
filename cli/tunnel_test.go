package cli

import "testing"

// TestTunnelAddRefusesBadInputLocally: bad routes are refused before the
// supervisor is asked (there is none here: the state dir is empty).
func TestTunnelAddRefusesBadInputLocally(t *testing.T) {
	expectRefused(t, []refusal{
		{[]string{"tunnel", "add", "10.241.0.0/33", "--remote", "198.51.100.2"}, "IPv4 prefix"},
		{[]string{"tunnel", "add", "10.241.0.0/16"}, "remote"},
		{[]string{"tunnel", "add", "10.241.0.0/16", "--remote", "198.51.100.2", "--vni", "0"}, "vni 0"},
		{[]string{"tunnel", "add", "10.241.0.0/16", "--remote", "198.51.100.2", "--vni", "16777216"}, "at most"},
		{[]string{"tunnel", "add"}, "want CIDR"},
		{[]string{"tunnel", "del", "bogus"}, "IPv4 prefix"},
	})
}
