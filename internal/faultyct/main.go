// Command faultyct is the real ct plugin with one fault injected, chosen by
// HOTPATH_FAULT, for the tests of upgrades and rollbacks:
//
//	verifier            Load hands the kernel a program the verifier rejects
//	exit                exits before the handshake
//	unhealthy=DURATION  reports unhealthy DURATION after Activate
//	abi                 claims ABI version 99
//	schema              claims ct4 values 8 bytes larger than the pinned map
//	layoutkey           claims ct4 keys 4 bytes larger (a layout no migration reaches)
//	layout9             claims layout 9 of the CT maps, which nobody knows
//	crash=DURATION      exits DURATION after Activate
//	lease               refuses the GC lease (Activate with GCLease fails)
//	linger=DURATION     stays alive DURATION after a graceful shutdown
//	slowload=DURATION   takes DURATION to answer Load
//	slowdescribe=DURATION takes DURATION to answer Describe
//	nodeactivate        fails to give up its GC lease (Deactivate fails)
//	reverifier          loads its first generation, then hands the verifier a broken program
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/plugins/ct"
)

type faulty struct {
	*ct.Plugin
	fault, arg string

	mu        sync.Mutex
	activated time.Time
	loads     int
}

func main() {
	fault, arg, _ := strings.Cut(os.Getenv("HOTPATH_FAULT"), "=")
	if fault == "exit" {
		fmt.Fprintln(os.Stderr, "faultyct: exiting at start as asked")
		os.Exit(3)
	}
	plugin.Serve(&faulty{Plugin: ct.New(plugin.Logger()), fault: fault, arg: arg})
	if fault == "linger" {
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	}
}

func (f *faulty) Describe(ctx context.Context, req *plugin.DescribeRequest) (*plugin.Description, error) {
	if f.fault == "slowdescribe" {
		d, _ := time.ParseDuration(f.arg)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	d, err := f.Plugin.Describe(ctx, req)
	if err != nil {
		return nil, err
	}
	switch f.fault {
	case "abi":
		d.ABIVersion = 99
	case "schema":
		for i := range d.Maps {
			if d.Maps[i].Name == "ct4" {
				d.Maps[i].ValueSize += 8
			}
		}
	case "layoutkey", "layout9":
		for i := range d.Maps {
			switch {
			case d.Maps[i].Version == 0:
			case f.fault == "layoutkey" && d.Maps[i].Name == "ct4":
				d.Maps[i].KeySize += 4
			case f.fault == "layout9":
				d.Maps[i].Version = 9
			}
		}
	}
	return d, nil
}

func (f *faulty) Load(ctx context.Context, req *plugin.LoadRequest) (*plugin.LoadResponse, error) {
	if f.fault == "slowload" {
		d, _ := time.ParseDuration(f.arg)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	f.loads++
	first := f.loads == 1
	f.mu.Unlock()
	if f.fault != "verifier" && (f.fault != "reverifier" || first) {
		return f.Plugin.Load(ctx, req)
	}
	// Reads 8 bytes past the end of struct __sk_buff: the verifier refuses.
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R0, asm.R1, 4096, asm.DWord),
			asm.Return(),
		},
	})
	if err == nil {
		prog.Close()
		return nil, fmt.Errorf("faultyct: the verifier accepted a broken program")
	}
	return nil, fmt.Errorf("load ct stage: %w", err)
}

func (f *faulty) Activate(ctx context.Context, req *plugin.ActivateRequest) error {
	f.mu.Lock()
	if f.activated.IsZero() {
		f.activated = time.Now()
		if f.fault == "crash" {
			d, _ := time.ParseDuration(f.arg)
			time.AfterFunc(d, func() { os.Exit(4) })
		}
	}
	f.mu.Unlock()
	if f.fault == "lease" && req.GCLease {
		return fmt.Errorf("faultyct: refusing the gc lease as asked")
	}
	return f.Plugin.Activate(ctx, req)
}

func (f *faulty) Deactivate(ctx context.Context) error {
	if f.fault == "nodeactivate" {
		return fmt.Errorf("faultyct: keeping the gc lease as asked")
	}
	return f.Plugin.Deactivate(ctx)
}

func (f *faulty) Health(ctx context.Context) (*plugin.Health, error) {
	if f.fault == "unhealthy" {
		d, _ := time.ParseDuration(f.arg)
		f.mu.Lock()
		since := f.activated
		f.mu.Unlock()
		if !since.IsZero() && time.Since(since) > d {
			return &plugin.Health{Healthy: false, Reason: "faultyct: unhealthy as asked"}, nil
		}
	}
	return f.Plugin.Health(ctx)
}
