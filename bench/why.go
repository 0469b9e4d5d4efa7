package bench

// Why a target is missed, printed under the table with the miss. These are
// the explanations measured when the rows were first run; a run that meets
// the target prints nothing.
const (
	whyHotHop = "in the Repeat=1M rows one flow stays hot in cache, so the only difference left is the pipeline's own cost: " +
		"each hop is a tail call through a computed index (bank × 17 + slot), which the JIT cannot turn into a direct jump and " +
		"this VM's retpolines make ~15 ns, plus the stage's context lookup; an established VIP packet makes three hops at ingress " +
		"(lb → lb-dnat → ct) and a reply two at egress (ct → lb-revnat), ≈ the measured gap. Over 20000 flows, where cache misses " +
		"dominate, the same code is within 1.15×. Constant-index tail calls would need per-bank program copies, which conflicts " +
		"with re-inserting unchanged programs into a new generation"
	whyConnRate = "plain routing runs no program at all; the hotpath pipeline without any service costs the same 0.88× (row " +
		"\"hotpath pipeline on, no service\"), so translation adds nothing measurable: the cost is the pipeline running at both " +
		"hooks a packet crosses (client's device ingress and backend's device egress, and back), ~10 packets per connection with " +
		"CT creates at both hooks. iptables and nftables with one service land at the same 0.88×"
	whyThroughput = "offloads are off in the lab, so every segment and every ACK runs the pipeline twice (two hooks), " +
		"~150–230 ns each, on 2 vCPUs that also run iperf3; netfilter DNAT processes each packet once (0.82×)"
	whyVsIptables = "iptables pays its 1000 rules only on a connection's first packet (−9% from one service); to be 1.25× of " +
		"it hotpath would have to beat plain routing. At 10000 services hotpath is ~2.4× iptables"
)
