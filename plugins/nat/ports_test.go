package nat

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadSocketsListeningOnly(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0200000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
`
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 0
  101: 0100007F:A000 0200000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 4 2 0000000000000000 0
`
	dir := t.TempDir()
	for name, body := range map[string]string{"tcp": tcp, "udp": udp} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readSockets(filepath.Join(dir, "tcp"), true)
	if err != nil || !slices.Equal(got, []uint16{8080}) {
		t.Errorf("tcp: %v, %v; want [8080] (the LISTEN socket, not the connected one)", got, err)
	}
	got, err = readSockets(filepath.Join(dir, "udp"), false)
	if err != nil || !slices.Equal(got, []uint16{53}) {
		t.Errorf("udp: %v, %v; want [53] (the unconnected socket)", got, err)
	}
	b := Exclusions(Settings{NodePortMin: 30000, NodePortMax: 30001}, []uint16{8080})
	for p, want := range map[uint16]bool{8080: true, 30000: true, 30001: true, 29999: false, 30002: false, 8081: false} {
		if b.Has(p) != want {
			t.Errorf("port %d excluded %v, want %v", p, b.Has(p), want)
		}
	}
}
