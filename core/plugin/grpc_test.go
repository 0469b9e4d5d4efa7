package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoDatapath records what it was sent and answers with fixed values.
type echoDatapath struct {
	Registry
	describe *DescribeRequest
	load     *LoadRequest
	activate *ActivateRequest
	fail     error
}

func (d *echoDatapath) Describe(_ context.Context, req *DescribeRequest) (*Description, error) {
	d.describe = req
	return &Description{
		Name: "echo", Version: "1.2.3", ABIVersion: 7, Slots: []string{"ct", "lb"},
		Hooks:       map[string][]string{"lb": {"ingress"}},
		Maps:        []MapSchema{{Name: "ct4", Type: "LRUHash", KeySize: 16, ValueSize: 72, Version: 2}, {Name: "pctx", Type: "PerCPUArray", KeySize: 4, ValueSize: 128, MaxEntries: 1}},
		PrivateMaps: []string{"state"}, Commands: []string{"echo"}, GC: true,
	}, d.fail
}

func (d *echoDatapath) Load(_ context.Context, req *LoadRequest) (*LoadResponse, error) {
	d.load = req
	if d.fail != nil {
		return nil, d.fail
	}
	return &LoadResponse{Programs: map[string]string{"ct": "/sys/fs/bpf/x"}, Cgroup: map[string]string{CgroupConnect4: "/sys/fs/bpf/c"}}, nil
}

func (d *echoDatapath) Activate(_ context.Context, req *ActivateRequest) error {
	d.activate = req
	return d.fail
}

func (d *echoDatapath) Deactivate(context.Context) error { return d.fail }

func (d *echoDatapath) Health(context.Context) (*Health, error) {
	return &Health{Healthy: false, Reason: "tired"}, d.fail
}

func (d *echoDatapath) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	if d.fail != nil {
		return nil, d.fail
	}
	return d.Registry.Metrics(ctx)
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

func serve(t *testing.T, impl Datapath, minor uint32) (*Client, *grpc.ClientConn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	registerServer(s, impl, minor)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	cc, err := grpc.Dial("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return NewClient(cc), cc
}

func TestGRPCRoundTrip(t *testing.T) {
	impl := &echoDatapath{}
	c, _ := serve(t, impl, ProtocolMinor)
	ctx := context.Background()

	dr := &DescribeRequest{Config: json.RawMessage(`{"select":"external"}`)}
	d, err := c.Describe(ctx, dr)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := impl.Describe(ctx, dr)
	want.ProtocolMinor = ProtocolMinor // filled in by the server
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("describe: got %+v, want %+v", d, want)
	}
	if string(impl.describe.Config) != string(dr.Config) {
		t.Fatalf("describe: plugin got config %s, sent %s", impl.describe.Config, dr.Config)
	}

	lr := &LoadRequest{Generation: 3, BPFFS: "/sys/fs/bpf/hp", Config: json.RawMessage(`{"a":1}`)}
	resp, err := c.Load(ctx, lr)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(impl.load, lr) || resp.Programs["ct"] != "/sys/fs/bpf/x" || resp.Cgroup[CgroupConnect4] != "/sys/fs/bpf/c" {
		t.Fatalf("load: sent %+v, plugin got %+v, answer %+v", lr, impl.load, resp)
	}

	ar := &ActivateRequest{Generation: 3, BPFFS: "/sys/fs/bpf/hp", StateDir: "/var/lib/hp", GCLease: true, Config: json.RawMessage(`{}`)}
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

// A plugin's client_golang counter and histogram arrive as metric families
// with their types and values.
func TestGRPCMetrics(t *testing.T) {
	impl := &echoDatapath{Registry: NewRegistry()}
	runs := prometheus.NewCounter(prometheus.CounterOpts{Name: "runs_total", Help: "Runs."})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "took_seconds", Help: "Took.", Buckets: []float64{0.1, 1}})
	impl.MustRegister(runs, took)
	runs.Add(3)
	took.Observe(0.05)
	took.Observe(0.5)
	c, _ := serve(t, impl, ProtocolMinor)
	fams, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		got[f.GetName()] = f
	}
	if f := got["runs_total"]; f.GetType() != dto.MetricType_COUNTER || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Errorf("runs_total: %v", f)
	}
	f := got["took_seconds"]
	if f.GetType() != dto.MetricType_HISTOGRAM || f.GetHelp() != "Took." {
		t.Fatalf("took_seconds: %v", f)
	}
	h := f.GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.55 || h.GetBucket()[0].GetCumulativeCount() != 1 {
		t.Errorf("took_seconds histogram: %v", h)
	}

	// The zero Registry: no metrics, no error.
	c, _ = serve(t, &echoDatapath{}, ProtocolMinor)
	if fams, err := c.Metrics(context.Background()); err != nil || len(fams) != 0 {
		t.Errorf("zero registry: %v, %v", fams, err)
	}
}

// A server of the previous minor version reports it and has no Metrics: the
// host sees the minor version in Describe and a clean Unimplemented.
func TestGRPCOlderMinor(t *testing.T) {
	c, _ := serve(t, &echoDatapath{Registry: NewRegistry()}, MinorMetrics-1)
	d, err := c.Describe(context.Background(), &DescribeRequest{})
	if err != nil || d.ProtocolMinor != MinorMetrics-1 {
		t.Fatalf("describe: minor %d, %v", minorOf(d), err)
	}
	_, err = c.Metrics(context.Background())
	var re *RemoteError
	if status.Code(errors.Unwrap(err)) != codes.Unimplemented || errors.As(err, &re) {
		t.Fatalf("metrics of a %d.%d plugin: %v, want Unimplemented", ProtocolVersion, MinorMetrics-1, err)
	}
}

// A server of a minor version before map layouts sends none: the host
// sees the schemas as such a plugin declares them.
func TestGRPCOlderMinorHasNoLayouts(t *testing.T) {
	c, _ := serve(t, &echoDatapath{}, MinorMapVersions-1)
	d, err := c.Describe(context.Background(), &DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Maps[0].Name != "ct4" || d.Maps[0].Version != 0 || d.Maps[0].ValueSize != 72 {
		t.Fatalf("schema from a %d.%d plugin: %+v, want no version", ProtocolVersion, MinorMapVersions-1, d.Maps[0])
	}
}

func TestHandleMigrate(t *testing.T) {
	req := MigrateRequest{Map: "ct4", From: 1, To: 2, KeySize: 2, OldSize: 1, NewSize: 2, Count: 2,
		Keys: []byte{1, 1, 2, 2}, Old: []byte{7, 9}, New: []byte{7, 0, 9, 0}}
	args, _ := json.Marshal(&req)
	out, err := HandleMigrate(args, func(r *MigrateRequest) error {
		for i := 0; i < r.Count; i++ {
			r.New[i*2+1] = r.Old[i] + 1 // a field whose meaning changed
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var res MigrateResult
	if err := json.Unmarshal(out, &res); err != nil || !reflect.DeepEqual(res.New, []byte{7, 8, 9, 10}) {
		t.Fatalf("migrated %v, %v; want [7 8 9 10]", res.New, err)
	}
	req.Count = 3
	args, _ = json.Marshal(&req)
	if _, err := HandleMigrate(args, func(*MigrateRequest) error { t.Fatal("called on a bad request"); return nil }); err == nil {
		t.Fatal("a request whose sizes do not add up was accepted")
	}
}

func TestGRPCErrors(t *testing.T) {
	impl := &echoDatapath{fail: errors.New(`load ct: map ct4: key size 12, want 16`)}
	c, _ := serve(t, impl, ProtocolMinor)
	ctx := context.Background()

	checks := map[string]error{}
	_, checks["describe"] = c.Describe(ctx, &DescribeRequest{})
	_, checks["load"] = c.Load(ctx, &LoadRequest{})
	checks["activate"] = c.Activate(ctx, &ActivateRequest{})
	checks["deactivate"] = c.Deactivate(ctx)
	_, checks["health"] = c.Health(ctx)
	_, checks["metrics"] = c.Metrics(ctx)
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
	_, err = NewClient(cc).Describe(context.Background(), &DescribeRequest{})
	var re *RemoteError
	if err == nil || errors.As(err, &re) || status.Code(errors.Unwrap(err)) != codes.Unavailable {
		t.Fatalf("got %v (%T), want an Unavailable transport error", err, err)
	}
	t.Log(err)
}

// A host of the JSON-in-BytesValue protocol (major version 1) calling a
// plugin of this one gets Unimplemented, never a misdecoded answer.
func TestGRPCOldMajorCall(t *testing.T) {
	_, cc := serve(t, &echoDatapath{}, ProtocolMinor)
	err := cc.Invoke(context.Background(), "/hotpath.plugin.v1.Datapath/Describe", wrapperspb.Bytes(nil), new(wrapperspb.BytesValue))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("got %v, want Unimplemented", err)
	}
}

func minorOf(d *Description) uint32 {
	if d == nil {
		return 0
	}
	return d.ProtocolMinor
}
