package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPrivilegedExternalHasNoRouteToPods: the node reaches the external
// namespace over the uplink, a pod does not get an answer from it (no route
// back), and the default lab has no external namespace.
func TestPrivilegedExternalHasNoRouteToPods(t *testing.T) {
	l := NewT(t, Options{Pods: []string{"a"}, External: true})
	if l.External == nil {
		t.Fatal("no external namespace")
	}
	srv := ExternalIP.String() + ":8080"
	if _, err := ServePeer(l.External, srv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen, err := l.Node.AskName(ctx, "tcp", srv)
	if err != nil || !strings.HasPrefix(seen, UplinkIP.String()+":") {
		t.Fatalf("from the node: server saw %q, %v; want %s:port", seen, err, UplinkIP)
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if seen, err := l.Pods["a"].AskName(short, "tcp", srv); err == nil {
		t.Fatalf("a pod got an answer from the external namespace (server saw %s): it must have no route back", seen)
	}
	if d := NewT(t, Options{Pods: []string{"b"}}); d.External != nil {
		t.Error("a lab without Options.External has an external namespace")
	}
}
