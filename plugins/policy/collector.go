package policy

import "github.com/prometheus/client_golang/prometheus"

var verdictsDesc = prometheus.NewDesc("verdicts_total", "Packets judged by policy, by endpoint and verdict.", []string{"endpoint", "verdict"}, nil)

// verdicts exports the per-endpoint verdict counters (hotpath_policy_
// verdicts_total), read from the datapath's map when scraped. Only the lease
// holder has the maps open; another instance reports nothing.
type verdicts struct{ p *Plugin }

func (v verdicts) Describe(ch chan<- *prometheus.Desc) { ch <- verdictsDesc }

func (v verdicts) Collect(ch chan<- prometheus.Metric) {
	v.p.mu.Lock()
	st := v.p.store
	v.p.mu.Unlock()
	if st == nil {
		return
	}
	eps, err := st.Endpoints()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(verdictsDesc, err)
		return
	}
	for _, e := range eps {
		ch <- prometheus.MustNewConstMetric(verdictsDesc, prometheus.CounterValue, float64(e.Allowed), e.IP, "allow")
		ch <- prometheus.MustNewConstMetric(verdictsDesc, prometheus.CounterValue, float64(e.Denied), e.IP, "deny")
	}
}
