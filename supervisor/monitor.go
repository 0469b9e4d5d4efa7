package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/monitor"
)

// monitorHub reads the events ring buffer while at least one `hotpath
// monitor` is connected and fans events out. The datapath writes events of a
// type only while the type's bit is set in hp_config.flags: the hub sets the
// union of what its subscribers want and clears every bit when the last one
// leaves, so an unwatched datapath reserves no ring space.
type monitorHub struct {
	mu     sync.Mutex
	subs   map[*monitorSub]bool
	rd     *ringbuf.Reader
	done   chan struct{}
	ifname map[uint32]string
}

type monitorSub struct {
	flags uint32
	ch    chan monitor.Event
	lost  int
}

var allMonitorBits = uint32(abi.AbiHpMonitorFlagHP_MON_DROP | abi.AbiHpMonitorFlagHP_MON_TRACE | abi.AbiHpMonitorFlagHP_MON_POLICY)

// reset clears monitor bits a previous supervisor may have left set when it
// died with a monitor attached.
func (h *monitorHub) reset(s *Supervisor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 && s.pipe != nil {
		s.pipe.SetFlags(0, allMonitorBits)
	}
}

func (h *monitorHub) subscribe(s *Supervisor, flags uint32) (*monitorSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rd == nil {
		rd, err := ringbuf.NewReader(s.sharedMap(abi.MapEvents))
		if err != nil {
			return nil, fmt.Errorf("open events ring buffer: %w", err)
		}
		h.rd, h.done, h.subs, h.ifname = rd, make(chan struct{}), map[*monitorSub]bool{}, map[uint32]string{}
		go h.read(rd, h.done)
	}
	sub := &monitorSub{flags: flags, ch: make(chan monitor.Event, 4096)}
	h.subs[sub] = true
	s.pipe.SetFlags(h.union(), 0)
	return sub, nil
}

func (h *monitorHub) union() uint32 {
	var f uint32
	for sub := range h.subs {
		f |= sub.flags
	}
	return f
}

func (h *monitorHub) unsubscribe(s *Supervisor, sub *monitorSub) {
	h.mu.Lock()
	delete(h.subs, sub)
	u := h.union()
	s.pipe.SetFlags(u, allMonitorBits&^u)
	var rd *ringbuf.Reader
	var done chan struct{}
	if len(h.subs) == 0 {
		rd, done = h.rd, h.done
		h.rd = nil
	}
	h.mu.Unlock()
	if rd != nil {
		rd.Close() // ends read
		<-done
	}
}

// read decodes events until the reader is closed. A subscriber too slow to
// keep up loses events, never the datapath.
func (h *monitorHub) read(rd *ringbuf.Reader, done chan struct{}) {
	defer close(done)
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			continue
		}
		ev, err := monitor.Decode(rec.RawSample)
		if err != nil {
			continue
		}
		ev.Time = wallTime(ev.MonoNs)
		bit, _ := monitor.Flag(ev.Type)
		h.mu.Lock()
		ev.Interface = h.name(ev.Ifindex)
		for sub := range h.subs {
			if sub.flags&bit == 0 {
				continue
			}
			select {
			case sub.ch <- ev:
			default:
				sub.lost++
			}
		}
		h.mu.Unlock()
	}
}

// name resolves an ifindex in the supervisor's namespace, cached.
func (h *monitorHub) name(idx uint32) string {
	if n, ok := h.ifname[idx]; ok {
		return n
	}
	n := ""
	if ifc, err := net.InterfaceByIndex(int(idx)); err == nil {
		n = ifc.Name
	}
	h.ifname[idx] = n
	return n
}

// wallTime turns a CLOCK_MONOTONIC stamp into wall time.
func wallTime(mono uint64) time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(uint64(ts.Nano()) - mono))
}

// handleMonitor streams events as JSON lines until the client goes away:
// GET /v1/monitor?type=drop&type=policy-verdict (no type: all types).
func (s *Supervisor) handleMonitor(w http.ResponseWriter, r *http.Request) {
	flags, err := monitor.Flags(r.URL.Query()["type"])
	if err != nil {
		reply(w, nil, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		reply(w, nil, errors.New("monitor: streaming not supported"))
		return
	}
	sub, err := s.mon.subscribe(s, flags)
	if err != nil {
		reply(w, nil, err)
		return
	}
	defer s.mon.unsubscribe(s, sub)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-sub.ch:
			if err := enc.Encode(ev); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
