package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/ctmap"
	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/supervisor"
)

const schemaStreams = 10

// schema upgrades ct to a build whose CT value has another layout (layout
// 2: reply counters and last-seen time) and back, while streams run: the
// maps are migrated up and down with every entry and counter.
func (d *Demo) schema(ctx context.Context) error {
	up := filepath.Join(d.opts.Bin, "demo", "hotpath-ct-layout2")
	down := filepath.Join(d.opts.Bin, "demo", "hotpath-ct-0.2.0")
	for _, p := range []string{up, down} {
		if _, err := os.Stat(p); err != nil {
			d.say("  skipping the schema migration: %s missing (make build makes it)", p)
			return nil
		}
	}
	dst, streams, err := d.webStreams(ctx, "8090", schemaStreams)
	if err != nil {
		return err
	}
	defer stopStreams(streams)
	time.Sleep(300 * time.Millisecond)
	before, err := d.ctCounters()
	if err != nil {
		return err
	}
	d.step("Schema migration: ct upgraded to a build with another CT value layout and back, %d streams client -> web3 and %d long-lived CT entries", schemaStreams, len(before))
	var took []string
	for _, bin := range []string{up, down} {
		d.say("$ hotpath plugin upgrade ct --binary %s --health-window 1s", bin)
		out, err := d.cli(false, "plugin", "upgrade", "ct", "--binary", bin, "--health-window", "1s", "-o", "json")
		if err != nil {
			return fmt.Errorf("upgrade ct to %s: %w", bin, err)
		}
		var res supervisor.UpgradeResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return fmt.Errorf("decode upgrade result: %w", err)
		}
		var migs []string
		for _, m := range res.Migrations {
			migs = append(migs, fmt.Sprintf("%s %d->%d", m.Map, m.From, m.To))
		}
		took = append(took, fmt.Sprintf("%s in %s", strings.Join(migs, ", "), res.Duration.Round(time.Millisecond)))
		d.say("  ct %s -> %s, generation %d, maps migrated: %s", res.From, res.To, res.Generation, took[len(took)-1])
		if bin == up {
			d.showLayout2(dst)
		}
	}
	after, err := d.ctCounters()
	if err != nil {
		return err
	}
	kept := 0
	for k, b := range before {
		if a, ok := after[k]; ok && a >= b {
			kept++
		}
	}
	broken := brokenStreams(streams)
	if kept != len(before) || broken != 0 {
		return fmt.Errorf("schema migration under traffic: %d of %d entries kept, %d of %d streams broken", kept, len(before), broken, len(streams))
	}
	d.fact("ct CT layout 1 -> 2 -> 1 by plugin upgrade under traffic (%s): %d of %d entries kept with their counters, %d of %d streams broken",
		strings.Join(took, "; "), kept, len(before), broken, len(streams))
	return nil
}

// showLayout2 prints one stream's entry as `ct list` shows layout 2.
func (d *Demo) showLayout2(dst string) {
	time.Sleep(300 * time.Millisecond)
	out, err := d.cli(false, "ct", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "-> "+dst) && strings.Contains(line, "RxPackets=") {
			d.say("  layout 2 in ct list: ...%s", line[strings.Index(line, "Packets="):])
			return
		}
	}
}

// ctCounters reads the packet counter of every ct4 entry of either layout
// that lives for another minute at least: closed connections of earlier
// steps expire meanwhile and GC rightly deletes them.
func (d *Demo) ctCounters() (map[abi.CTTuple]uint64, error) {
	m, err := ebpf.LoadPinnedMap(pin.Layout{Root: d.lab.BPFFS}.Map(abi.MapCT4), nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	out := map[abi.CTTuple]uint64{}
	alive := ctmap.Now() + 60
	err = ctmap.Scan(m, func(k *abi.CTTuple, v *abi.CTEntry) bool {
		if v.Lifetime >= alive {
			out[*k] = v.Packets
		}
		return true
	})
	return out, err
}
