package abi

import "fmt"

// Friendly names for the generated mirrors of bpf/lib/abi.h.
type (
	Ctx         = AbiHpCtx
	Config      = AbiHpConfig
	Metric      = AbiHpMetric
	CTTuple     = AbiHpCtTuple
	CTEntry     = AbiHpCtEntry
	CTEntryV2   = AbiHpCtEntryV2
	LB4Key      = AbiHpLb4Key
	LB4Service  = AbiHpLb4Service
	LB4SlotKey  = AbiHpLb4SlotKey
	LB4Backend  = AbiHpLb4Backend
	LB4RevNat   = AbiHpLb4Revnat
	LB4AffKey   = AbiHpLb4AffinityKey
	LB4Affinity = AbiHpLb4Affinity
	MaglevChunk = AbiHpMaglevChunk
	Slot        = AbiHpSlot
	Reason      = AbiHpReason
	Frag4Key    = AbiHpFrag4Key
	Frag4Ports  = AbiHpFrag4Ports
	NAT4Key     = AbiHpNat4Key
	NAT4Entry   = AbiHpNat4Entry
)

const (
	Version   = uint32(AbiHpAbiConstHP_ABI_VERSION)
	Banks     = uint32(AbiHpBankConstHP_BANKS)
	Slots     = uint32(AbiHpSlotHP_SLOTS)
	CallsSize = uint32(AbiHpBankConstHP_CALLS_SIZE)
	Reasons   = uint32(AbiHpReasonHP_REASONS)

	// MaglevChunkIDs is how many backend ids one lb4_maglev element holds.
	MaglevChunkIDs = uint32(AbiHpMaglevConstHP_MAGLEV_CHUNK)

	TupleOut     = uint8(AbiHpTupleFlagHP_TUPLE_F_OUT)
	TupleIn      = uint8(AbiHpTupleFlagHP_TUPLE_F_IN)
	TupleRelated = uint8(AbiHpTupleFlagHP_TUPLE_F_RELATED)
	TupleService = uint8(AbiHpTupleFlagHP_TUPLE_F_SERVICE)

	CTRxClosing  = uint32(AbiHpCtFlagHP_CT_F_RX_CLOSING)
	CTTxClosing  = uint32(AbiHpCtFlagHP_CT_F_TX_CLOSING)
	CTSeenNonSyn = uint32(AbiHpCtFlagHP_CT_F_SEEN_NON_SYN)
	CTNodePort   = uint32(AbiHpCtFlagHP_CT_F_NODE_PORT)
	CTDSR        = uint32(AbiHpCtFlagHP_CT_F_DSR)

	NATEgress  = uint8(AbiHpNatDirHP_NAT_EGRESS)
	NATIngress = uint8(AbiHpNatDirHP_NAT_INGRESS)
)

// Names of the shared maps, as pinned under <bpffs>/maps.
const (
	MapCalls   = AbiMapCalls
	MapConfig  = AbiMapConfig
	MapPctx    = AbiMapPctx
	MapMetrics = AbiMapMetrics
	MapEvents  = AbiMapEvents
	MapCT4     = AbiMapCt4
	MapCTAny4  = AbiMapCtAny4
	MapFrag4   = AbiMapFrag4
	MapNAT4    = AbiMapNat4
	MapTunnel4 = AbiMapTunnel4
)

var slotNames = map[Slot]string{
	AbiHpSlotHP_SLOT_PRE_LB:     "pre-lb",
	AbiHpSlotHP_SLOT_LB:         "lb",
	AbiHpSlotHP_SLOT_LB_SELECT:  "lb-select",
	AbiHpSlotHP_SLOT_LB_DNAT:    "lb-dnat",
	AbiHpSlotHP_SLOT_REV_SNAT:   "rev-snat",
	AbiHpSlotHP_SLOT_CT:         "ct",
	AbiHpSlotHP_SLOT_LB_REVNAT:  "lb-revnat",
	AbiHpSlotHP_SLOT_PRE_POLICY: "pre-policy",
	AbiHpSlotHP_SLOT_POLICY:     "policy",
	AbiHpSlotHP_SLOT_NAT:        "nat",
	AbiHpSlotHP_SLOT_POST_NAT:   "post-nat",
	AbiHpSlotHP_SLOT_TUNNEL:     "tunnel",
	AbiHpSlotHP_SLOT_FORWARD:    "forward",
	AbiHpSlotHP_SLOT_VENDOR_A:   "vendor-a",
	AbiHpSlotHP_SLOT_VENDOR_B:   "vendor-b",
	AbiHpSlotHP_SLOT_VENDOR_C:   "vendor-c",
	AbiHpSlotHP_SLOT_CHECK:      "check",
}

// SlotName is the name a plugin uses to claim slot s.
func SlotName(s Slot) string {
	if n, ok := slotNames[s]; ok {
		return n
	}
	return fmt.Sprintf("slot-%d", uint32(s))
}

// ParseSlot turns a slot name back into its id.
func ParseSlot(name string) (Slot, error) {
	for s, n := range slotNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown pipeline slot %q", name)
}

var reasonNames = map[Reason]string{
	AbiHpReasonHP_R_FORWARD:          "forward",
	AbiHpReasonHP_R_PASS_OTHER:       "pass_other",
	AbiHpReasonHP_R_PARSE_ERROR:      "parse_error",
	AbiHpReasonHP_R_MISSED_TAIL_CALL: "missed_tail_call",
	AbiHpReasonHP_R_NO_CONTEXT:       "no_context",
	AbiHpReasonHP_R_CT_CREATE_FAILED: "ct_create_failed",
	AbiHpReasonHP_R_NO_BACKEND:       "no_backend",
	AbiHpReasonHP_R_POLICY_DENIED:    "policy_denied",
	AbiHpReasonHP_R_GEN_MISMATCH:     "gen_mismatch",
	AbiHpReasonHP_R_FRAGMENT:         "fragment",
	AbiHpReasonHP_R_UNSUPPORTED:      "unsupported",
	AbiHpReasonHP_R_STAGE_DROP:       "stage_drop",
	AbiHpReasonHP_R_PASS_IPV6:        "pass_ipv6",
	AbiHpReasonHP_R_PASS_VLAN:        "pass_vlan",
	AbiHpReasonHP_R_FRAG_NOT_FOUND:   "frag_not_found",
	AbiHpReasonHP_R_REJECT:           "reject",
	AbiHpReasonHP_R_ICMP_RELATED:     "icmp_related",
	AbiHpReasonHP_R_NAT_EXHAUSTED:    "nat_exhausted",
	AbiHpReasonHP_R_FRAG_NEEDED:      "frag_needed",
}

// ReasonName is the metric label of reason r.
func ReasonName(r Reason) string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// MetricKey is the index of (reason, dir) in the metrics map.
func MetricKey(r Reason, dir uint32) uint32 { return uint32(r)<<1 | dir&1 }

// Dropped tells whether packets counted under r were dropped.
func Dropped(r Reason) bool {
	switch r {
	case AbiHpReasonHP_R_FORWARD, AbiHpReasonHP_R_PASS_OTHER, AbiHpReasonHP_R_FRAGMENT,
		AbiHpReasonHP_R_UNSUPPORTED, AbiHpReasonHP_R_CT_CREATE_FAILED, AbiHpReasonHP_R_PASS_IPV6,
		AbiHpReasonHP_R_PASS_VLAN, AbiHpReasonHP_R_ICMP_RELATED:
		return false
	}
	return true
}
