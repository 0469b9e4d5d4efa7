package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Sync is one node's etcd source.
type Sync struct {
	cfg  Config
	log  hclog.Logger
	keys Keys
	rec  *Programmer
	box  statusBox
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

// SetDialer makes the etcd client connect through d (tests reach an etcd
// in another network namespace this way). Call it before Run.
func (s *Sync) SetDialer(d func(ctx context.Context, addr string) (net.Conn, error)) { s.dial = d }

// probeEvery is how often a session checks that etcd answers, and
// probeTimeout how long an answer may take on a loaded machine before the
// session counts etcd as gone: an outage shows in status within about 2 s.
const (
	probeEvery   = 500 * time.Millisecond
	probeTimeout = 1500 * time.Millisecond
)

// New validates cfg and returns a sync for the node behind dp.
func New(cfg Config, dp Datapath, log hclog.Logger) (*Sync, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sync{cfg: cfg, log: log, keys: Keys{Prefix: cfg.KVStorePrefix}, rec: NewProgrammer(cfg, dp)}
	s.box.st = Status{Node: cfg.NodeName, State: StateConnecting}
	return s, nil
}

// Status reports the sync.
func (s *Sync) Status() Status { return s.box.get() }

// Run syncs until ctx ends. Between sessions (etcd unreachable) the
// datapath keeps what it has.
func (s *Sync) Run(ctx context.Context) {
	cli, err := dial(s.cfg.KVStoreEndpoints, s.dial)
	if err != nil {
		s.degrade(err)
		return
	}
	defer cli.Close()
	for ctx.Err() == nil {
		err := s.session(ctx, cli)
		if ctx.Err() != nil {
			return
		}
		s.degrade(err)
		select {
		case <-ctx.Done():
		case <-time.After(probeEvery):
		}
	}
}

func (s *Sync) degrade(err error) {
	prev := s.box.get().State
	s.box.update(func(st *Status) {
		if st.State != StateConnecting {
			st.State = StateDegraded
		}
		st.Reason = err.Error()
	})
	if prev == StateHealthy {
		s.log.Warn("cluster: etcd unreachable, keeping the datapath as it is", "error", err)
	}
}

// Dial connects to etcd without waiting for it.
func Dial(endpoints []string) (*clientv3.Client, error) { return dial(endpoints, nil) }

func dial(endpoints []string, d func(ctx context.Context, addr string) (net.Conn, error)) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: time.Second}
	if d != nil {
		cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(d)}
	}
	return clientv3.New(cfg)
}

// session reads everything, registers the node, converges, then follows
// the watch until etcd stops answering.
func (s *Sync) session(ctx context.Context, cli *clientv3.Client) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := NewDesired()
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	resp, err := cli.Get(rctx, s.keys.root(), clientv3.WithPrefix())
	rcancel()
	if err != nil {
		return fmt.Errorf("read %s: %w", s.keys.root(), err)
	}
	for _, kv := range resp.Kvs {
		d.set(s.keys, s.cfg.NodeName, string(kv.Key), kv.Value)
	}
	lease, err := s.register(ctx, cli)
	if err != nil {
		return err
	}
	rev := resp.Header.Revision
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), s.keys.root(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	dirty := s.converge(ctx, d, rev)
	s.log.Info("cluster: synced", "revision", rev, "services", len(d.Services), "nodes", len(d.Nodes))
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("watch: %w", errors.Join(wr.Err(), errors.New("closed")))
			}
			for _, ev := range wr.Events {
				var val []byte
				if ev.Type == clientv3.EventTypePut {
					val = ev.Kv.Value
				}
				d.set(s.keys, s.cfg.NodeName, string(ev.Kv.Key), val)
			}
			rev = wr.Header.Revision
			dirty = s.converge(ctx, d, rev)
		case _, ok := <-lease:
			if !ok {
				return errors.New("node lease lost")
			}
		case <-tick.C:
			pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
			_, err := cli.Get(pctx, s.keys.Node(s.cfg.NodeName))
			pcancel()
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			if dirty {
				dirty = s.converge(ctx, d, rev)
			}
		}
	}
}

// converge reconciles and reports whether it has to be retried.
func (s *Sync) converge(ctx context.Context, d *Desired, rev int64) bool {
	skipped := s.rec.Run(ctx, d)
	s.rec.record(&s.box, d, rev, skipped)
	return len(skipped) > len(d.Bad)
}

// register puts this node's key under a fresh lease and keeps it alive.
func (s *Sync) register(ctx context.Context, cli *clientv3.Client) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	g, err := cli.Grant(rctx, s.cfg.LeaseTTLSeconds)
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	val, _ := json.Marshal(Node{Name: s.cfg.NodeName, IP: s.cfg.NodeIP, PodCIDR: s.cfg.PodCIDR})
	if _, err := cli.Put(rctx, s.keys.Node(s.cfg.NodeName), string(val), clientv3.WithLease(g.ID)); err != nil {
		return nil, fmt.Errorf("register node %s: %w", s.cfg.NodeName, err)
	}
	ka, err := cli.KeepAlive(ctx, g.ID)
	if err != nil {
		return nil, fmt.Errorf("keep lease alive: %w", err)
	}
	return ka, nil
}
