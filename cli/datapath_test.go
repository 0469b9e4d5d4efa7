package cli

import "testing"

// TestDatapathShowRefusesArguments: extra arguments are refused before the
// supervisor is asked (there is none here: the state dir is empty).
func TestDatapathShowRefusesArguments(t *testing.T) {
	expectRefused(t, []refusal{
		{[]string{"datapath", "show", "eth0"}, "takes no arguments"},
		{[]string{"datapath", "show", "-o", "json", "x", "y"}, "takes no arguments"},
		{[]string{"datapath", "show", "-o", "yaml"}, "want json or table"},
		{[]string{"datapath", "show"}, "supervisor not reachable"},
	})
}
