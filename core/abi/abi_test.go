package abi

import "testing"

// Every reason the datapath can count has its own metric label, and the
// labels that dashboards already use stay what they were.
func TestReasonNames(t *testing.T) {
	stable := map[Reason]string{
		AbiHpReasonHP_R_FORWARD: "forward", AbiHpReasonHP_R_PASS_OTHER: "pass_other",
		AbiHpReasonHP_R_PARSE_ERROR: "parse_error", AbiHpReasonHP_R_MISSED_TAIL_CALL: "missed_tail_call",
		AbiHpReasonHP_R_NO_CONTEXT: "no_context", AbiHpReasonHP_R_CT_CREATE_FAILED: "ct_create_failed",
		AbiHpReasonHP_R_NO_BACKEND: "no_backend", AbiHpReasonHP_R_POLICY_DENIED: "policy_denied",
		AbiHpReasonHP_R_GEN_MISMATCH: "gen_mismatch", AbiHpReasonHP_R_FRAGMENT: "fragment",
		AbiHpReasonHP_R_UNSUPPORTED: "unsupported", AbiHpReasonHP_R_STAGE_DROP: "stage_drop",
	}
	for r, n := range stable {
		if got := ReasonName(r); got != n {
			t.Errorf("reason %d is now %q, was %q", r, got, n)
		}
	}
	seen := map[string]Reason{}
	for r := AbiHpReasonHP_R_FORWARD; r <= AbiHpReasonHP_R_ICMP_RELATED; r++ {
		n := ReasonName(r)
		if n == "" || n[:min(len(n), 7)] == "reason_" {
			t.Errorf("reason %d has no name", r)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("reasons %d and %d share the name %q", o, r, n)
		}
		seen[n] = r
	}
	if len(reasonNames) != int(AbiHpReasonHP_R_ICMP_RELATED)+1 {
		t.Errorf("%d reason names for %d reasons: a reason was added without a name", len(reasonNames), AbiHpReasonHP_R_ICMP_RELATED+1)
	}
	for _, r := range []Reason{AbiHpReasonHP_R_PASS_IPV6, AbiHpReasonHP_R_PASS_VLAN, AbiHpReasonHP_R_ICMP_RELATED, AbiHpReasonHP_R_FRAGMENT} {
		if Dropped(r) {
			t.Errorf("%s counted as a drop", ReasonName(r))
		}
	}
	for _, r := range []Reason{AbiHpReasonHP_R_FRAG_NOT_FOUND, AbiHpReasonHP_R_REJECT} {
		if !Dropped(r) {
			t.Errorf("%s not counted as a drop", ReasonName(r))
		}
	}
}
