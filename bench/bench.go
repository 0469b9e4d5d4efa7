// Package bench is `make bench`: a list of independent suites, each
// measuring a few rows on the real kernel (BPF_PROG_TEST_RUN, real maps,
// real traffic in throwaway network namespaces), rendered as one markdown
// table. Every row is measured several times and reports its median and
// spread; a comparison row carries its baseline, measured in the same run.
package bench

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Suite is one independent group of rows. Suites share nothing but the
// Context, so one can be added, removed or selected (--only) freely.
type Suite struct {
	Name string
	// About is one line for --list and the README.
	About string
	Run   func(c *Context) ([]Row, error)
}

// Context is what a suite gets from the runner.
type Context struct {
	Bin  string // directory with hotpath and its plugin binaries
	Self string // this executable, re-run for helper processes in labs
	Runs int    // samples per row (at least 3)
	// LabRuns is Runs for rows that push real traffic through a lab, which
	// cost seconds per sample (at least 3).
	LabRuns int
	// Variants, when set, keeps only the lab variants whose key matches
	// (plain routing, the ceiling every row is measured against, stays).
	Variants *regexp.Regexp
	Log      io.Writer // progress, not results
}

// Logf writes one progress line.
func (c *Context) Logf(format string, args ...any) {
	fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
}

// Suites is every suite in table order. New rows go into an existing suite
// or a new entry here.
func Suites() []Suite {
	return []Suite{
		{"datapath", "ns/packet through the entry program and stages (BPF_PROG_TEST_RUN)", datapathSuite},
		{"ctgc", "CT GC over a 1M-entry LRU_HASH: scan rate, full pass time", ctgcSuite},
		{"maglev", "Maglev table build time and allocation", maglevSuite},
		{"lab", "TCP throughput and connection rate through a namespace lab vs iptables/nftables DNAT", labSuite},
		{"masquerade", "new connections/s from a pod to an external server through masquerade vs iptables MASQUERADE", masqSuite},
		{"memory", "peak RSS of the supervisor and the ct plugin under traffic", memorySuite},
		{"upgrade", "plugin upgrade swap latency and packets lost per swap", upgradeSuite},
		{"policy", "NetworkPolicy: 1000-rule apply time, connection rate with 1000 rules vs none", policySuite},
		{"tunnel", "cross-node TCP throughput and connection rate over the tunnel plugin vs the kernel's VXLAN with static routes", tunnelSuite},
		{"cluster", "etcd source: propagation of a `hotpath cluster service add` to three nodes", clusterSuite},
		{"remap", "live map resize of ct4 with 1M entries under traffic; one-slot ARRAY_OF_MAPS lookup cost", remapSuite},
	}
}

// Select returns the suites whose name matches only (all when only is "").
func Select(only string) ([]Suite, error) {
	all := Suites()
	if only == "" {
		return all, nil
	}
	re, err := regexp.Compile(only)
	if err != nil {
		return nil, fmt.Errorf("--only %q: %w", only, err)
	}
	var out []Suite
	for _, s := range all {
		if re.MatchString(s.Name) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--only %q matches no suite", only)
	}
	return out, nil
}

// Outcome is one suite's rows, its error and how long it took.
type Outcome struct {
	Suite Suite
	Rows  []Row
	Err   error
	Took  time.Duration
}

// Run runs every suite in order. A failing suite does not stop the others:
// its error becomes part of the report.
func Run(c *Context, suites []Suite) []Outcome {
	var out []Outcome
	for _, s := range suites {
		c.Logf("suite %s: %s", s.Name, s.About)
		start := time.Now()
		rows, err := runSuite(c, s)
		o := Outcome{Suite: s, Rows: rows, Err: err, Took: time.Since(start)}
		if err != nil {
			c.Logf("suite %s failed after %v: %v", s.Name, o.Took.Round(time.Millisecond), err)
		} else {
			c.Logf("suite %s done in %v", s.Name, o.Took.Round(time.Millisecond))
		}
		out = append(out, o)
	}
	return out
}

// runSuite turns a panic into the suite's error, so one broken suite still
// leaves a report (and its deferred cleanups run).
func runSuite(c *Context, s Suite) (rows []Row, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Join(err, fmt.Errorf("panic: %v", r))
		}
	}()
	rows, err = s.Run(c)
	for i := range rows {
		rows[i].Suite = s.Name
	}
	return rows, err
}
