// Command bench is `make bench`: it runs the suites of package bench, prints
// one markdown table and writes it to --out.
//
//	bench --bin DIR --out FILE [--only REGEX] [--runs N] [--lab-runs N] [--list]
//
// It needs root (BPF, network namespaces). It also serves as its own helper
// process inside lab namespaces (see bench.Helper).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/bench"
)

func main() {
	if len(os.Args) > 1 && bench.IsHelper(os.Args[1]) {
		os.Exit(bench.Helper(os.Args[1], os.Args[2:]))
	}
	bin := flag.String("bin", "bin", "directory with the hotpath binaries (make build)")
	out := flag.String("out", "", "write the markdown report here too")
	only := flag.String("only", "", "run only suites whose name matches this regexp")
	runs := flag.Int("runs", 5, "runs per row (at least 3)")
	labRuns := flag.Int("lab-runs", 5, "runs per row that sends traffic through a lab (at least 3)")
	variants := flag.String("lab-variants", "", "lab suite: run only variants whose key matches this regexp (plain routing always runs)")
	list := flag.Bool("list", false, "list the suites and exit")
	flag.Parse()
	if *list {
		for _, s := range bench.Suites() {
			fmt.Printf("%-10s %s\n", s.Name, s.About)
		}
		return
	}
	if err := run(*bin, *out, *only, *variants, *runs, *labRuns); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin, out, only, variants string, runs, labRuns int) error {
	if runs < 3 || labRuns < 3 {
		return fmt.Errorf("--runs %d, --lab-runs %d: need at least 3 for a median and a spread", runs, labRuns)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (BPF, network namespaces)")
	}
	suites, err := bench.Select(only)
	if err != nil {
		return err
	}
	variantRE, err := regexp.Compile(variants)
	if err != nil {
		return fmt.Errorf("--lab-variants %q: %w", variants, err)
	}
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	// An interrupted bench still removes its namespaces and mounts.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "bench: %v: cleaning up\n", sig)
		bench.Abort()
		os.Exit(130)
	}()
	c := &bench.Context{Bin: absBin, Self: self, Runs: runs, LabRuns: labRuns, Variants: variantRE, Log: os.Stderr}
	start := time.Now()
	env := bench.ReadEnv()
	outcomes := bench.Run(c, suites)
	var buf bytes.Buffer
	bench.Report(&buf, env, outcomes, runs, labRuns, time.Since(start))
	os.Stdout.Write(buf.Bytes())
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", out)
	}
	for _, o := range outcomes {
		if o.Err != nil {
			return fmt.Errorf("suite %s failed (see the report)", o.Suite.Name)
		}
	}
	return nil
}
