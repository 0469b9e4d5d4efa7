package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/hotpath/hotpath/core/plugin/proto"
)

// ServiceName is the gRPC service a plugin registers.
const ServiceName = "hotpath.plugin.v2.Datapath"

// RemoteError is an error returned by the plugin's implementation, as opposed
// to a transport failure (which keeps its gRPC status, see status.Code). Its
// text is exactly the plugin's message.
type RemoteError struct {
	Method  string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// server serves a Datapath as the generated DatapathServer.
type server struct {
	pb.UnimplementedDatapathServer
	impl  Datapath
	minor uint32 // the minor version it speaks, see servedMinor
}

// RegisterServer registers impl as the Datapath service on s.
func RegisterServer(s grpc.ServiceRegistrar, impl Datapath) {
	registerServer(s, impl, servedMinor())
}

func registerServer(s grpc.ServiceRegistrar, impl Datapath, minor uint32) {
	pb.RegisterDatapathServer(s, &server{impl: impl, minor: minor})
}

// implError sends the implementation's error as codes.Unknown with its
// message untouched, even when it is itself a gRPC status from something the
// plugin called: the host must not mistake it for a transport failure of its
// own connection.
func implError(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.Unknown, err.Error())
}

func (s *server) Describe(ctx context.Context, in *pb.DescribeRequest) (*pb.Description, error) {
	d, err := s.impl.Describe(ctx, &DescribeRequest{Config: in.GetConfig()})
	if err != nil {
		return nil, implError(err)
	}
	out := descriptionToProto(d)
	out.ProtocolMinor = s.minor
	if s.minor < MinorMapVersions {
		// What a server of that minor version sends: no layout versions.
		for _, m := range out.Maps {
			m.Version = 0
		}
	}
	return out, nil
}

func (s *server) Load(ctx context.Context, in *pb.LoadRequest) (*pb.LoadResponse, error) {
	r, err := s.impl.Load(ctx, &LoadRequest{Generation: in.GetGeneration(), BPFFS: in.GetBpffs(), Config: in.GetConfig()})
	if err != nil {
		return nil, implError(err)
	}
	return &pb.LoadResponse{Programs: r.Programs, CgroupPrograms: r.Cgroup}, nil
}

func (s *server) Activate(ctx context.Context, in *pb.ActivateRequest) (*pb.Empty, error) {
	err := s.impl.Activate(ctx, &ActivateRequest{
		Generation: in.GetGeneration(), BPFFS: in.GetBpffs(), StateDir: in.GetStateDir(),
		Config: in.GetConfig(), GCLease: in.GetGcLease(),
	})
	return &pb.Empty{}, implError(err)
}

func (s *server) Deactivate(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, implError(s.impl.Deactivate(ctx))
}

func (s *server) Health(ctx context.Context, _ *pb.Empty) (*pb.HealthResponse, error) {
	h, err := s.impl.Health(ctx)
	if err != nil {
		return nil, implError(err)
	}
	return &pb.HealthResponse{Healthy: h.Healthy, Reason: h.Reason}, nil
}

func (s *server) Metrics(ctx context.Context, _ *pb.Empty) (*pb.MetricsResponse, error) {
	if s.minor < MinorMetrics {
		// What a server of that minor version answers: it has no Metrics.
		return s.UnimplementedDatapathServer.Metrics(ctx, nil)
	}
	fams, err := s.impl.Metrics(ctx)
	if err != nil {
		return nil, implError(err)
	}
	return &pb.MetricsResponse{Families: fams}, nil
}

func (s *server) Invoke(ctx context.Context, in *pb.InvokeRequest) (*pb.InvokeResponse, error) {
	out, err := s.impl.Invoke(ctx, &InvokeRequest{Command: in.GetCommand(), Args: in.GetArgs()})
	if err != nil {
		return nil, implError(err)
	}
	return &pb.InvokeResponse{Result: out}, nil
}

func descriptionToProto(d *Description) *pb.Description {
	out := &pb.Description{
		Name: d.Name, Version: d.Version, AbiVersion: d.ABIVersion, ProtocolMinor: d.ProtocolMinor,
		Slots: d.Slots, PrivateMaps: d.PrivateMaps, Gc: d.GC, Commands: d.Commands,
	}
	if d.Hooks != nil {
		out.Hooks = make(map[string]*pb.Hooks, len(d.Hooks))
		for slot, hooks := range d.Hooks {
			out.Hooks[slot] = &pb.Hooks{Hooks: hooks}
		}
	}
	for _, m := range d.Maps {
		out.Maps = append(out.Maps, &pb.MapSchema{Name: m.Name, Type: m.Type, KeySize: m.KeySize, ValueSize: m.ValueSize, MaxEntries: m.MaxEntries, Version: m.Version})
	}
	return out
}

func descriptionFromProto(d *pb.Description) *Description {
	out := &Description{
		Name: d.GetName(), Version: d.GetVersion(), ABIVersion: d.GetAbiVersion(), ProtocolMinor: d.GetProtocolMinor(),
		Slots: d.GetSlots(), PrivateMaps: d.GetPrivateMaps(), GC: d.GetGc(), Commands: d.GetCommands(),
	}
	if d.GetHooks() != nil {
		out.Hooks = make(map[string][]string, len(d.GetHooks()))
		for slot, h := range d.GetHooks() {
			out.Hooks[slot] = h.GetHooks()
		}
	}
	for _, m := range d.GetMaps() {
		out.Maps = append(out.Maps, MapSchema{Name: m.GetName(), Type: m.GetType(), KeySize: m.GetKeySize(), ValueSize: m.GetValueSize(), MaxEntries: m.GetMaxEntries(), Version: m.GetVersion()})
	}
	return out
}

// Client is the host side of the Datapath service.
type Client struct{ rpc pb.DatapathClient }

var _ Datapath = (*Client)(nil)

// NewClient returns a Datapath that calls the plugin behind cc.
func NewClient(cc grpc.ClientConnInterface) *Client { return &Client{rpc: pb.NewDatapathClient(cc)} }

// remoteError turns the implementation's errors back into plain errors with
// the plugin's text, and labels transport errors with the method.
func remoteError(method string, err error) error {
	st, ok := status.FromError(err)
	if ok && (st.Code() == codes.Unknown || st.Code() == codes.Internal) {
		return &RemoteError{Method: method, Message: st.Message()}
	}
	return fmt.Errorf("%s: %w", strings.ToLower(method), err)
}

func (c *Client) Describe(ctx context.Context, req *DescribeRequest) (*Description, error) {
	var config []byte
	if req != nil {
		config = req.Config
	}
	d, err := c.rpc.Describe(ctx, &pb.DescribeRequest{Config: config})
	if err != nil {
		return nil, remoteError("Describe", err)
	}
	return descriptionFromProto(d), nil
}

func (c *Client) Load(ctx context.Context, req *LoadRequest) (*LoadResponse, error) {
	r, err := c.rpc.Load(ctx, &pb.LoadRequest{Generation: req.Generation, Bpffs: req.BPFFS, Config: req.Config})
	if err != nil {
		return nil, remoteError("Load", err)
	}
	return &LoadResponse{Programs: r.GetPrograms(), Cgroup: r.GetCgroupPrograms()}, nil
}

func (c *Client) Activate(ctx context.Context, req *ActivateRequest) error {
	_, err := c.rpc.Activate(ctx, &pb.ActivateRequest{
		Generation: req.Generation, Bpffs: req.BPFFS, StateDir: req.StateDir,
		Config: req.Config, GcLease: req.GCLease,
	})
	if err != nil {
		return remoteError("Activate", err)
	}
	return nil
}

func (c *Client) Deactivate(ctx context.Context) error {
	if _, err := c.rpc.Deactivate(ctx, &pb.Empty{}); err != nil {
		return remoteError("Deactivate", err)
	}
	return nil
}

func (c *Client) Health(ctx context.Context) (*Health, error) {
	h, err := c.rpc.Health(ctx, &pb.Empty{})
	if err != nil {
		return nil, remoteError("Health", err)
	}
	return &Health{Healthy: h.GetHealthy(), Reason: h.GetReason()}, nil
}

// Metrics fails with codes.Unimplemented against a plugin older than
// MinorMetrics; callers check Description.ProtocolMinor first.
func (c *Client) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	r, err := c.rpc.Metrics(ctx, &pb.Empty{})
	if err != nil {
		return nil, remoteError("Metrics", err)
	}
	return r.GetFamilies(), nil
}

func (c *Client) Invoke(ctx context.Context, req *InvokeRequest) (json.RawMessage, error) {
	r, err := c.rpc.Invoke(ctx, &pb.InvokeRequest{Command: req.Command, Args: req.Args})
	if err != nil {
		return nil, remoteError("Invoke", err)
	}
	if len(r.GetResult()) == 0 {
		return nil, nil
	}
	return r.GetResult(), nil
}
