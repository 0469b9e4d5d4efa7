package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hotpath/hotpath/core/services"
)

// Store writes and reads the cluster's desired state: what `hotpath
// cluster` does.
type Store struct {
	cli  *clientv3.Client
	keys Keys
}

// Open connects to etcd.
func Open(endpoints []string, prefix string) (*Store, error) { return OpenDial(endpoints, prefix, nil) }

// OpenDial is Open connecting through d (nil: directly).
func OpenDial(endpoints []string, prefix string, d func(ctx context.Context, addr string) (net.Conn, error)) (*Store, error) {
	if err := ValidEndpoints(endpoints); err != nil {
		return nil, err
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	cli, err := dial(endpoints, d)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	return &Store{cli: cli, keys: Keys{Prefix: prefix}}, nil
}

// Close disconnects.
func (s *Store) Close() error { return s.cli.Close() }

func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 5*time.Second)
}

// AddService writes a service; it refuses one that exists, like lb's
// service-add.
func (s *Store) AddService(ctx context.Context, a services.ServiceAddArgs) error {
	spec, err := a.Spec()
	if err != nil {
		return err
	}
	a.VIP = spec.VIP.String()
	val, _ := json.Marshal(a)
	key := s.keys.Service(a.VIP)
	ctx, cancel := opCtx(ctx)
	defer cancel()
	r, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	if !r.Succeeded {
		return fmt.Errorf("service %s exists; delete it first", a.VIP)
	}
	return nil
}

// DelService deletes a service.
func (s *Store) DelService(ctx context.Context, vip string) error {
	v, err := services.ParseVIP(vip)
	if err != nil {
		return err
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	r, err := s.cli.Delete(ctx, s.keys.Service(v.String()))
	if err != nil {
		return fmt.Errorf("delete service %s: %w", v, err)
	}
	if r.Deleted == 0 {
		return fmt.Errorf("service %s: not found", v)
	}
	return nil
}

// Services lists the services as written.
func (s *Store) Services(ctx context.Context) ([]services.ServiceAddArgs, error) {
	var out []services.ServiceAddArgs
	err := s.list(ctx, s.keys.Services(), func(key string, val []byte) error {
		var a services.ServiceAddArgs
		if err := json.Unmarshal(val, &a); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// Nodes lists the registered nodes.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := s.list(ctx, s.keys.Nodes(), func(key string, val []byte) error {
		var n Node
		if err := json.Unmarshal(val, &n); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, n)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Put writes any key of the layout as JSON (tests and tools).
func (s *Store) Put(ctx context.Context, key string, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	_, err = s.cli.Put(ctx, key, string(val))
	return err
}

// Delete removes any key of the layout.
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	_, err := s.cli.Delete(ctx, key)
	return err
}

// Keys is the store's key layout.
func (s *Store) Keys() Keys { return s.keys }

func (s *Store) list(ctx context.Context, prefix string, f func(string, []byte) error) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	r, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read %s: %w", prefix, err)
	}
	for _, kv := range r.Kvs {
		if err := f(string(kv.Key), kv.Value); err != nil {
			return err
		}
	}
	return nil
}
