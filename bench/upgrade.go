package bench

// upgradeSuite holds the rows of DESIGN §8 that need `hotpath plugin
// upgrade` (rolling upgrade through a generation flip): fill them by
// upgrading the ct plugin under a lab stream (lab.StartStream) and reading
// the swap time from the supervisor and lost packets from the drop metrics.
func upgradeSuite(*Context) ([]Row, error) {
	const needs = "`hotpath plugin upgrade` (rolling plugin upgrade)"
	return []Row{
		pending("ct plugin upgrade under traffic: swap latency (Load of gen N+1 → flip)", needs),
		pending("ct plugin upgrade under traffic: packets lost per swap, established TCP stream", needs),
		pending("LB algorithm swap (random ↔ maglev) under traffic: swap latency, flows moved", "lb plugin `lb service set-algorithm`"),
		pending("scale: time to configure 1 / 1000 / 10000 services through hotpath (`lb service add`)", "the lb plugin (hotpath-lb)"),
	}, nil
}
