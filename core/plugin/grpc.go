package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the gRPC service a plugin registers. Every message is a
// google.protobuf.BytesValue holding the JSON encoding of the structs in
// plugin.go: the contract is the Go structs, so there is no .proto to keep in
// sync and no protoc in the build.
const ServiceName = "hotpath.plugin.v1.Datapath"

// RemoteError is an error returned by the plugin's implementation, as opposed
// to a transport failure (which keeps its gRPC status, see status.Code). Its
// text is exactly the plugin's message.
type RemoteError struct {
	Method  string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// rpcServer adapts a Datapath to the hand-written service description.
type rpcServer struct{ impl Datapath }

// rpcHandler is the HandlerType grpc checks registered servers against.
type rpcHandler interface {
	call(ctx context.Context, method string, in []byte) ([]byte, error)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*rpcHandler)(nil),
	Methods: []grpc.MethodDesc{
		method("Describe"), method("Load"), method("Activate"),
		method("Deactivate"), method("Health"), method("Invoke"),
	},
	Metadata: "hotpath/core/plugin/grpc.go",
}

func method(name string) grpc.MethodDesc {
	full := "/" + ServiceName + "/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				out, err := srv.(rpcHandler).call(ctx, name, req.(*wrapperspb.BytesValue).GetValue())
				if err != nil {
					return nil, err
				}
				return wrapperspb.Bytes(out), nil
			}
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
		},
	}
}

// RegisterServer registers impl as the Datapath service on s.
func RegisterServer(s grpc.ServiceRegistrar, impl Datapath) {
	s.RegisterService(&serviceDesc, &rpcServer{impl: impl})
}

func (s *rpcServer) call(ctx context.Context, method string, in []byte) ([]byte, error) {
	out, err := s.dispatch(ctx, method, in)
	var pe protocolError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &pe):
		return nil, pe.st.Err()
	default:
		// The implementation's error travels as codes.Unknown with its
		// message untouched, even when it is itself a gRPC status from
		// something the plugin called: the host must not mistake it for a
		// transport failure of its own connection.
		return nil, status.Error(codes.Unknown, err.Error())
	}
}

// protocolError is a failure of the transport layer itself (bad request,
// unknown method), kept apart from the implementation's errors.
type protocolError struct{ st *status.Status }

func (e protocolError) Error() string { return e.st.Message() }

func (s *rpcServer) dispatch(ctx context.Context, method string, in []byte) ([]byte, error) {
	switch method {
	case "Describe":
		return marshal(s.impl.Describe(ctx))
	case "Load":
		var req LoadRequest
		if err := decodeRequest(in, &req); err != nil {
			return nil, err
		}
		return marshal(s.impl.Load(ctx, &req))
	case "Activate":
		var req ActivateRequest
		if err := decodeRequest(in, &req); err != nil {
			return nil, err
		}
		return nil, s.impl.Activate(ctx, &req)
	case "Deactivate":
		return nil, s.impl.Deactivate(ctx)
	case "Health":
		return marshal(s.impl.Health(ctx))
	case "Invoke":
		var req InvokeRequest
		if err := decodeRequest(in, &req); err != nil {
			return nil, err
		}
		return s.impl.Invoke(ctx, &req)
	}
	return nil, protocolError{status.Newf(codes.Unimplemented, "unknown method %s", method)}
}

func decodeRequest(in []byte, v any) error {
	if err := json.Unmarshal(in, v); err != nil {
		return protocolError{status.Newf(codes.InvalidArgument, "decode request: %v", err)}
	}
	return nil
}

func marshal[T any](v *T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Client is the host side of the Datapath service.
type Client struct{ cc grpc.ClientConnInterface }

var _ Datapath = (*Client)(nil)

// NewClient returns a Datapath that calls the plugin behind cc.
func NewClient(cc grpc.ClientConnInterface) *Client { return &Client{cc: cc} }

func (c *Client) call(ctx context.Context, method string, req, resp any) error {
	in := &wrapperspb.BytesValue{}
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", strings.ToLower(method), err)
		}
		in.Value = b
	}
	out := &wrapperspb.BytesValue{}
	if err := c.cc.Invoke(ctx, "/"+ServiceName+"/"+method, in, out); err != nil {
		return remoteError(method, err)
	}
	switch r := resp.(type) {
	case nil:
	case *json.RawMessage:
		if len(out.Value) > 0 {
			*r = out.Value
		}
	default:
		if err := json.Unmarshal(out.Value, resp); err != nil {
			return fmt.Errorf("decode %s response: %w", strings.ToLower(method), err)
		}
	}
	return nil
}

// remoteError turns the implementation's errors back into plain errors with
// the plugin's text, and labels transport errors with the method.
func remoteError(method string, err error) error {
	st, ok := status.FromError(err)
	if ok && (st.Code() == codes.Unknown || st.Code() == codes.Internal) {
		return &RemoteError{Method: method, Message: st.Message()}
	}
	return fmt.Errorf("%s: %w", strings.ToLower(method), err)
}

func (c *Client) Describe(ctx context.Context) (*Description, error) {
	var d Description
	if err := c.call(ctx, "Describe", nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func (c *Client) Load(ctx context.Context, req *LoadRequest) (*LoadResponse, error) {
	var r LoadResponse
	if err := c.call(ctx, "Load", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (c *Client) Activate(ctx context.Context, req *ActivateRequest) error {
	return c.call(ctx, "Activate", req, nil)
}

func (c *Client) Deactivate(ctx context.Context) error {
	return c.call(ctx, "Deactivate", nil, nil)
}

func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	if err := c.call(ctx, "Health", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

func (c *Client) Invoke(ctx context.Context, req *InvokeRequest) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.call(ctx, "Invoke", req, &out); err != nil {
		return nil, err
	}
	return out, nil
}
