package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report writes the header, the table and the notes as markdown.
func Report(w io.Writer, env Env, outcomes []Outcome, runs, labRuns int, total time.Duration) {
	fmt.Fprintf(w, "# hotpath bench — %s\n\n", env.Date)
	fmt.Fprintf(w, "- kernel %s, %s × %d, %d MiB RAM, %s\n", env.Kernel, env.CPU, env.CPUs, env.MemMiB, env.Go)
	if env.Commit != "" {
		fmt.Fprintf(w, "- commit %s\n", env.Commit)
	}
	for _, t := range toolVersions() {
		fmt.Fprintf(w, "- %s\n", t)
	}
	fmt.Fprintf(w, "- load average at start %s, at end %s (the VM is shared: compare rows of one run, not across runs)\n", env.LoadStart, loadAvg())
	fmt.Fprintf(w, "- %d runs per row (%d for lab traffic rows); median and min..max over the runs; ratio = median / baseline median, both measured in this run\n", runs, labRuns)
	fmt.Fprintf(w, "- total time %v\n\n", total.Round(time.Second))

	fmt.Fprintln(w, "| suite | row (parameters) | runs | median | spread (min..max) | baseline | baseline median | ratio | target | met? |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var notes []string
	for _, o := range outcomes {
		for _, r := range o.Rows {
			fmt.Fprintln(w, tableLine(r))
			if r.Note != "" {
				notes = append(notes, fmt.Sprintf("%s / %s: %s", r.Suite, r.Name, r.Note))
			}
			if v, ok := r.targetValue(); ok && !r.Met() {
				what := fmt.Sprintf("median %.4g %s", v, r.Unit)
				if r.Target.Ratio {
					what = fmt.Sprintf("ratio %.3g×", v)
				}
				miss := fmt.Sprintf("MISSED TARGET %s / %s: %s, target %s", r.Suite, r.Name, what, targetText(r))
				if r.Target.Why != "" {
					miss += ". Why: " + r.Target.Why
				}
				notes = append(notes, miss)
			}
		}
		if o.Err != nil {
			fmt.Fprintf(w, "| %s | **suite failed**: %s | | | | | | | | |\n", o.Suite.Name, cell(o.Err.Error()))
			notes = append(notes, fmt.Sprintf("suite %s failed: %v", o.Suite.Name, o.Err))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Suite times: "+suiteTimes(outcomes))
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func tableLine(r Row) string {
	if r.Pending != "" {
		return fmt.Sprintf("| %s | %s | — | %s | | | | | | |", r.Suite, cell(r.Name), cell(r.Pending))
	}
	if len(r.Samples) == 0 {
		return fmt.Sprintf("| %s | %s | 0 | no samples | | | | | | |", r.Suite, cell(r.Name))
	}
	lo, hi := MinMax(r.Samples)
	med := Median(r.Samples)
	medCell := format(med, r.Unit)
	if r.Tail {
		medCell += "; p99 " + format(P99(r.Samples), r.Unit)
	}
	base, baseMed, ratio := "", "", ""
	if len(r.Base) > 0 {
		bm := Median(r.Base)
		blo, bhi := MinMax(r.Base)
		base = cell(r.BaseName)
		baseMed = fmt.Sprintf("%s (%s..%s)", format(bm, r.Unit), format(blo, r.Unit), format(bhi, r.Unit))
		ratio = fmt.Sprintf("%.2f×", med/bm)
	}
	target, met := "", ""
	if r.Target != nil {
		target = targetText(r)
		met = "no"
		if r.Met() {
			met = "yes"
		}
	}
	return fmt.Sprintf("| %s | %s | %d | %s | %s..%s | %s | %s | %s | %s | %s |",
		r.Suite, cell(r.Name), len(r.Samples), medCell, format(lo, r.Unit), format(hi, r.Unit),
		base, baseMed, ratio, target, met)
}

func targetText(r Row) string {
	op := "≥"
	if r.Target.Max {
		op = "≤"
	}
	if r.Target.Ratio {
		return fmt.Sprintf("%s %.2f× baseline", op, r.Target.Value)
	}
	return op + " " + format(r.Target.Value, r.Unit)
}

// cell keeps a value from breaking the table.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func suiteTimes(outcomes []Outcome) string {
	var parts []string
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%s %v", o.Suite.Name, o.Took.Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}
