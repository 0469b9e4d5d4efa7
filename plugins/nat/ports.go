package nat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// bitmapWords is the size of the nat_excl bitmap: one bit per port.
const bitmapWords = 65536 / 64

// Bitmap marks ports the datapath never hands out.
type Bitmap [bitmapWords]uint64

// Set marks port p.
func (b *Bitmap) Set(p uint16) { b[p>>6] |= 1 << (p & 63) }

// Has tells whether p is marked.
func (b *Bitmap) Has(p uint16) bool { return b[p>>6]&(1<<(p&63)) != 0 }

// Exclusions are the NodePort range and the ports the node listens on.
func Exclusions(s Settings, listening []uint16) *Bitmap {
	var b Bitmap
	for p := uint32(s.NodePortMin); p <= uint32(s.NodePortMax); p++ {
		b.Set(uint16(p))
	}
	for _, p := range listening {
		b.Set(p)
	}
	return &b
}

// procSockets are the socket tables of this network namespace: the plugin
// runs in the node's namespace (the supervisor's), where the node's own
// services listen.
var procSockets = []string{"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"}

// ListeningPorts returns the local ports of the node's listening TCP
// sockets and bound unconnected UDP sockets: a reply to a masqueraded flow
// must never be mistaken for traffic to one of them.
func ListeningPorts() ([]uint16, error) {
	var out []uint16
	for _, path := range procSockets {
		ps, err := readSockets(path, strings.HasPrefix(path, "/proc/net/tcp"))
		if err != nil {
			if os.IsNotExist(err) {
				continue // no IPv6
			}
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// readSockets parses one /proc/net table: "sl local rem st ...", addresses
// as HEXADDR:HEXPORT. TCP state 0A is LISTEN; UDP state 07 is an
// unconnected bound socket.
func readSockets(path string, tcp bool) ([]uint16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := "07"
	if tcp {
		want = "0A"
	}
	var out []uint16
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != want {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("parse %s: port %q: %w", path, hexPort, err)
		}
		out = append(out, uint16(p))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// WriteBitmap writes the words of b that differ from what m holds and
// returns how many it wrote. Each word is one map element, written whole.
func WriteBitmap(m *ebpf.Map, b *Bitmap) (int, error) {
	n := 0
	for i := uint32(0); i < bitmapWords; i++ {
		var cur uint64
		if err := m.Lookup(&i, &cur); err != nil {
			return n, fmt.Errorf("read exclusion word %d: %w", i, err)
		}
		if cur == b[i] {
			continue
		}
		if err := m.Put(&i, &b[i]); err != nil {
			return n, fmt.Errorf("write exclusion word %d: %w", i, err)
		}
		n++
	}
	return n, nil
}

// RefreshExclusions re-reads the node's listening ports and updates the
// datapath's bitmap.
func RefreshExclusions(m *ebpf.Map, s Settings) error {
	ports, err := ListeningPorts()
	if err != nil {
		return fmt.Errorf("listening ports: %w", err)
	}
	_, err = WriteBitmap(m, Exclusions(s, ports))
	return err
}
