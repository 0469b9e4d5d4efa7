package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoDatapath records what it was sent and answers with fixed values.
type echoDatapath struct {
	load     *LoadRequest
	activate *ActivateRequest
	fail     error
}

func (d *echoDatapath) Describe(context.Context) (*Description, error) {
	return &Description{
		Name: "echo", Version: "1.2.3", ABIVersion: 7, Slots: []string{"ct"},
		Maps:     []MapSchema{{Name: "ct4", Type: "LRUHash", KeySize: 16, ValueSize: 64}},
		Commands: []string{"echo"}, GC: true,
	}, d.fail
}

func (d *echoDatapath) Load(_ context.Context, req *LoadRequest) (*LoadResponse, error) {
	d.load = req
	if d.fail != nil {
		return nil, d.fail
	}
	return &LoadResponse{Programs: map[string]string{"ct": "/sys/fs/bpf/x"}}, nil
}

func (d *echoDatapath) Activate(_ context.Context, req *ActivateRequest) error {
	d.activate = req
	return d.fail
}

func (d *echoDatapath) Deactivate(context.Context) error { return d.fail }

func (d *echoDatapath) Health(context.Context) (*Health, error) {
	return &Health{Healthy: false, Reason: "tired"}, d.fail
}

func (d *echoDatapath) Invoke(_ context.Context, req *InvokeRequest) (json.RawMessage, error) {
	switch req.Command {
	case "echo":
		return req.Args, nil
	case "nothing":
		return nil, nil
	}
	// Even a gRPC status from something the plugin called is the plugin's
	// error, not a transport failure.
	return nil, status.Error(codes.Unavailable, "backend down")
}

func serve(t *testing.T, impl Datapath) *Client {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	RegisterServer(s, impl)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	cc, err := grpc.Dial("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return NewClient(cc)
}

func TestGRPCRoundTrip(t *testing.T) {
	impl := &echoDatapath{}
	c := serve(t, impl)
	ctx := context.Background()

	d, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := impl.Describe(ctx)
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("describe: got %+v, want %+v", d, want)
	}

	lr := &LoadRequest{Generation: 3, BPFFS: "/sys/fs/bpf/hp", Config: json.RawMessage(`{"a":1}`)}
	resp, err := c.Load(ctx, lr)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(impl.load, lr) || resp.Programs["ct"] != "/sys/fs/bpf/x" {
		t.Fatalf("load: sent %+v, plugin got %+v, answer %+v", lr, impl.load, resp)
	}

	ar := &ActivateRequest{Generation: 3, StateDir: "/var/lib/hp", GCLease: true, Config: json.RawMessage(`{}`)}
	if err := c.Activate(ctx, ar); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(impl.activate, ar) {
		t.Fatalf("activate: sent %+v, plugin got %+v", ar, impl.activate)
	}
	if err := c.Deactivate(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := c.Health(ctx); err != nil || h.Healthy || h.Reason != "tired" {
		t.Fatalf("health: %+v, %v", h, err)
	}

	out, err := c.Invoke(ctx, &InvokeRequest{Command: "echo", Args: json.RawMessage(`{"x":[1,2]}`)})
	if err != nil || string(out) != `{"x":[1,2]}` {
		t.Fatalf("invoke echo: %s, %v", out, err)
	}
	out, err = c.Invoke(ctx, &InvokeRequest{Command: "nothing"})
	if err != nil || out != nil {
		t.Fatalf("invoke nothing: %q, %v", out, err)
	}
}

func TestGRPCErrors(t *testing.T) {
	impl := &echoDatapath{fail: errors.New(`load ct: map ct4: key size 12, want 16`)}
	c := serve(t, impl)
	ctx := context.Background()

	checks := map[string]error{}
	_, checks["describe"] = c.Describe(ctx)
	_, checks["load"] = c.Load(ctx, &LoadRequest{})
	checks["activate"] = c.Activate(ctx, &ActivateRequest{})
	checks["deactivate"] = c.Deactivate(ctx)
	_, checks["health"] = c.Health(ctx)
	for name, err := range checks {
		if err == nil || err.Error() != impl.fail.Error() {
			t.Errorf("%s: got %v, want %q", name, err, impl.fail)
		}
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Errorf("%s: %T is not a *RemoteError", name, err)
		}
	}

	_, err := c.Invoke(ctx, &InvokeRequest{Command: "other"})
	if err == nil || err.Error() != "rpc error: code = Unavailable desc = backend down" {
		t.Fatalf("invoke: got %v", err)
	}
}

// A dead connection is a transport error, told apart from the plugin's own.
func TestGRPCTransportError(t *testing.T) {
	cc, err := grpc.Dial("unix://"+filepath.Join(t.TempDir(), "none"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = NewClient(cc).Describe(context.Background())
	var re *RemoteError
	if err == nil || errors.As(err, &re) || status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v (%T), want an Unavailable transport error", err, err)
	}
	t.Log(err)
}

func TestGRPCBadRequest(t *testing.T) {
	c := serve(t, &echoDatapath{})
	err := c.cc.Invoke(context.Background(), "/"+ServiceName+"/Load", wrapperspb.Bytes([]byte(`{not json`)), new(wrapperspb.BytesValue))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
}
