package bench

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/plugins/ct"
	"github.com/hotpath/hotpath/supervisor"
)

// memTraffic is how long each memory run drives new connections through
// the datapath; memRuns is fixed because peak RSS barely varies.
const (
	memTraffic = 5 * time.Second
	memRuns    = 3
)

// memCTConfig makes the ct plugin's GC run during the traffic (first pass
// after 2 s, closed connections expire after 1 s), so its peak includes GC
// passes that find and delete entries, not just an idle plugin.
var memCTConfig = json.RawMessage(`{"lifetimes": {"close": "1s"}, "gc": {"start": "2s", "min": "1s", "max": "1m"}}`)

func memorySuite(c *Context) ([]Row, error) {
	if err := EnsureTools(c); err != nil {
		return nil, err
	}
	var sup, plug, lbPlug, applied, entries, gcRuns, gcDeleted []float64
	for run := range memRuns {
		r, err := memoryRun(c)
		if err != nil {
			return nil, err
		}
		c.Logf("memory run %d/%d: supervisor %s, ct plugin %s, lb plugin %s, %d CT entries, GC %d passes %d deleted", run+1, memRuns,
			format(r.supHWM, UnitBytes), format(r.ctHWM, UnitBytes), format(r.lbHWM, UnitBytes), r.entries, r.gc.Runs, r.gc.Deleted)
		sup, plug, lbPlug = append(sup, r.supHWM), append(plug, r.ctHWM), append(lbPlug, r.lbHWM)
		applied = append(applied, r.apply.Seconds())
		entries = append(entries, float64(r.entries))
		gcRuns, gcDeleted = append(gcRuns, float64(r.gc.Runs)), append(gcDeleted, float64(r.gc.Deleted))
	}
	traffic := fmt.Sprintf("fresh lab + supervisor (ct and lb plugins) per run, %s of new connections (%d workers) through its datapath on 4 devices, ct GC from 2 s, close lifetime 1 s", memTraffic, connWorkers)
	note := fmt.Sprintf("medians per run: %.0f CT entries left after the traffic, %.0f GC passes deleted %.0f entries", Median(entries), Median(gcRuns), Median(gcDeleted))
	return []Row{
		{Name: "peak RSS (VmHWM), supervisor, " + traffic, Unit: UnitBytes, Samples: sup, Note: note},
		{Name: "peak RSS (VmHWM), ct plugin process, " + traffic, Unit: UnitBytes, Samples: plug},
		{Name: fmt.Sprintf("peak RSS (VmHWM), lb plugin process with %d services × 3 backends (random, the config's default algorithm), added with one `lb service apply` after the traffic", memServices),
			Unit: UnitBytes, Samples: lbPlug, Note: fmt.Sprintf("the apply took %s (median)", format(Median(applied), UnitSeconds))},
	}, nil
}

// memServices is how many services the lb plugin holds in the memory
// runs.
const memServices = 1000

// memResult is one memory run.
type memResult struct {
	supHWM, ctHWM, lbHWM float64
	apply                time.Duration // the `lb service apply` of memServices
	entries              int
	gc                   ct.GCStats
}

// memoryRun starts a lab and a supervisor with the ct plugin, drives
// traffic and returns both processes' VmHWM, the CT entries left and what
// the GC did.
func memoryRun(c *Context) (r memResult, err error) {
	e, err := newLabEnv(c)
	if err != nil {
		return r, err
	}
	defer e.close()
	h, err := startSupervisor(c, e, []supervisor.PluginConfig{{Name: "ct", Config: memCTConfig}, {Name: "lb"}})
	if err != nil {
		return r, err
	}
	defer h.stop()
	res, err := e.connRate(c, e.connAddr, memTraffic, connWorkers)
	if err != nil {
		return r, fmt.Errorf("traffic through the supervisor's datapath: %w", err)
	}
	if res.Errors > 0 {
		return r, fmt.Errorf("traffic through the supervisor's datapath: %d failed connections (first: %s)", res.Errors, res.FirstErr)
	}
	// After the traffic, so the ct GC's schedule during it is the same as
	// without the lb plugin (a long apply would let its interval back off).
	if r.apply, err = h.applyServices(e, "services.json", servicesAhead(memServices)); err != nil {
		return r, err
	}
	ps, err := h.Plugins()
	if err != nil {
		return r, err
	}
	pids := map[string]int{}
	for _, p := range ps {
		pids[p.Name] = p.Pid
	}
	if pids["ct"] == 0 || pids["lb"] == 0 {
		return r, fmt.Errorf("ct or lb plugin not listed: %+v", ps)
	}
	if err := h.invoke("ct", "stats", &r.gc); err != nil {
		return r, err
	}
	if r.supHWM, err = vmHWM(h.Sup.Pid); err != nil {
		return r, err
	}
	if r.ctHWM, err = vmHWM(pids["ct"]); err != nil {
		return r, err
	}
	if r.lbHWM, err = vmHWM(pids["lb"]); err != nil {
		return r, err
	}
	r.entries, err = countCT(e)
	return r, err
}

// countCT counts the entries of the lab's pinned ct4 map: proof that the
// traffic went through the datapath.
func countCT(e *labEnv) (int, error) {
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: e.lab.BPFFS}.Shared(abi.MapCT4), nil)
	if err != nil {
		return 0, fmt.Errorf("open ct4: %w", err)
	}
	defer m.Close()
	return countEntries(m)
}
