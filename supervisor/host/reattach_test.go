package host

import (
	"encoding/json"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
)

func TestReattachJSON(t *testing.T) {
	r := Reattach{Pid: 42, Network: "unix", Address: "/run/hotpath/plugins/plugin123", ProtocolVersion: 1}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pid":42,"network":"unix","address":"/run/hotpath/plugins/plugin123","protocol_version":1}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	c, err := r.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Protocol != goplugin.ProtocolGRPC || c.Pid != 42 || c.ProtocolVersion != 1 ||
		c.Addr.Network() != "unix" || c.Addr.String() != r.Address {
		t.Fatalf("config %+v", c)
	}
	if back := ReattachFrom(c, 0); back != r {
		t.Fatalf("round trip: got %+v, want %+v", back, r)
	}
	tcp := Reattach{Pid: 1, Network: "tcp", Address: "127.0.0.1:1234"}
	if c, err := tcp.Config(); err != nil || ReattachFrom(c, 1) != (Reattach{Pid: 1, Network: "tcp", Address: "127.0.0.1:1234", ProtocolVersion: 1}) {
		t.Fatalf("tcp: %+v, %v", c, err)
	}
}
