package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/hotpath/hotpath/core/pin"
	"github.com/hotpath/hotpath/core/plugin"
	"github.com/hotpath/hotpath/supervisor/host"
)

// migrateTimeout bounds one CommandMigrate call (a batch of pin.BatchSize
// entries).
const migrateTimeout = 30 * time.Second

// converterFor is the instance among insts whose build converts map name
// between layouts a and b: the one declaring the higher of the two (it
// knows both) and listing plugin.CommandMigrate; nil: field names alone.
func converterFor(name string, a, b uint32, insts ...*host.Instance) *host.Instance {
	high := max(a, b)
	for _, inst := range insts {
		if inst == nil || inst.Exited() || !slices.Contains(inst.Desc.Commands, plugin.CommandMigrate) {
			continue
		}
		for _, ms := range inst.Desc.Maps {
			if ms.Name == name && ms.Version == high {
				return inst
			}
		}
	}
	return nil
}

// pluginConvert is a migration's per-entry hook when the plugin converts:
// every value is converted by field name, then handed to the plugin in
// batches (plugin.CommandMigrate). The whole source map is converted in
// batches at the first call, so the copy finds nearly every entry done;
// entries changed since (the delta and merge passes) go one by one.
type pluginConvert struct {
	inst     *host.Instance
	name     string
	from, to uint32
	conv     *pin.Converter
	src      *ebpf.Map

	mu   sync.Mutex
	done map[string][]byte // key + old value -> new value
}

func (pc *pluginConvert) entry(key, value []byte) ([]byte, []byte, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.done == nil {
		pc.done = map[string][]byte{}
		if err := pc.prefill(); err != nil {
			return nil, nil, err
		}
	}
	if v, ok := pc.done[string(key)+string(value)]; ok {
		return key, slices.Clone(v), nil
	}
	out, err := pc.batch(key, value, 1)
	if err != nil {
		return nil, nil, err
	}
	return key, out, nil
}

// prefill converts every entry of the source map now.
func (pc *pluginConvert) prefill() error {
	ks, vs := int(pc.src.KeySize()), int(pc.src.ValueSize())
	keyRows, keys := flatRows(ks, pin.BatchSize)
	valRows, vals := flatRows(vs, pin.BatchSize)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := pc.src.BatchLookup(&cursor, keyRows, valRows, nil)
		if n > 0 {
			out, cerr := pc.batch(keys[:n*ks], vals[:n*vs], n)
			if cerr != nil {
				return cerr
			}
			for i := 0; i < n; i++ {
				pc.done[string(keys[i*ks:(i+1)*ks])+string(vals[i*vs:(i+1)*vs])] = out[i*pc.conv.ToSize : (i+1)*pc.conv.ToSize]
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s for the plugin's conversion: %w", pc.name, err)
		}
	}
}

// batch converts n entries by name, then has the plugin finish them.
func (pc *pluginConvert) batch(keys, olds []byte, n int) ([]byte, error) {
	from, to := pc.conv.FromSize, pc.conv.ToSize
	news := make([]byte, n*to)
	for i := 0; i < n; i++ {
		pc.conv.Convert(news[i*to:(i+1)*to], olds[i*from:(i+1)*from])
	}
	req := plugin.MigrateRequest{Map: pc.name, From: pc.from, To: pc.to, KeySize: len(keys) / max(n, 1),
		OldSize: from, NewSize: to, Keys: keys, Old: olds, New: news, Count: n}
	args, err := json.Marshal(&req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()
	out, err := pc.inst.Datapath.Invoke(ctx, &plugin.InvokeRequest{Command: plugin.CommandMigrate, Args: args})
	if err != nil {
		return nil, fmt.Errorf("plugin %s %s converting %s: %w", pc.inst.Name, pc.inst.Desc.Version, pc.name, err)
	}
	var res plugin.MigrateResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("plugin %s converting %s: %w", pc.inst.Name, pc.name, err)
	}
	if len(res.New) != len(news) {
		return nil, fmt.Errorf("plugin %s converting %s: answered %d bytes for %d entries of %d", pc.inst.Name, pc.name, len(res.New), n, to)
	}
	return res.New, nil
}

// flatRows makes n rows of size bytes in the shape batch lookups want and
// returns it with a flat view of its memory.
func flatRows(size, n int) (any, []byte) {
	v := reflect.MakeSlice(reflect.SliceOf(reflect.ArrayOf(size, reflect.TypeFor[byte]())), n, n)
	return v.Interface(), unsafe.Slice((*byte)(v.UnsafePointer()), size*n)
}
