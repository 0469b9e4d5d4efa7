package kube

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/core/netpol"
)

// Source follows the Kubernetes API with informers and programs the node
// on every change (coalesced).
type Source struct {
	client  kubernetes.Interface
	node    string
	prog    *cluster.Programmer
	log     hclog.Logger
	factory informers.SharedInformerFactory
	kick    chan struct{}
	// Skipped is what the last reconcile could not program.
	last chan []string
	mu   sync.Mutex
	st   cluster.Status
}

// Status reports the source in the etcd source's terms: connecting until
// the caches synced, then healthy with what the last reconcile did.
func (s *Source) Status() cluster.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// New builds a source for node over client, programming through prog.
func New(client kubernetes.Interface, node string, prog *cluster.Programmer, log hclog.Logger) *Source {
	s := &Source{client: client, node: node, prog: prog, log: log, kick: make(chan struct{}, 1), last: make(chan []string, 1),
		factory: informers.NewSharedInformerFactory(client, 0), st: cluster.Status{Node: node, State: cluster.StateConnecting}}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.poke() },
		UpdateFunc: func(any, any) { s.poke() },
		DeleteFunc: func(any) { s.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		s.factory.Core().V1().Services().Informer(),
		s.factory.Discovery().V1().EndpointSlices().Informer(),
		s.factory.Networking().V1().NetworkPolicies().Informer(),
		s.factory.Core().V1().Pods().Informer(),
		s.factory.Core().V1().Nodes().Informer(),
	} {
		inf.AddEventHandler(h)
	}
	return s
}

func (s *Source) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run starts the informers and reconciles until ctx ends: after the caches
// sync, on every change, and every second while something failed.
func (s *Source) Run(ctx context.Context) {
	s.factory.Start(ctx.Done())
	s.factory.WaitForCacheSync(ctx.Done())
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	failed := true
	for {
		select {
		case <-ctx.Done():
			s.factory.Shutdown()
			return
		case <-s.kick:
		case <-retry.C:
			if !failed {
				continue
			}
		}
		d, err := s.desired()
		if err != nil {
			s.log.Warn("kube: read caches", "error", err)
			failed = true
			continue
		}
		skipped := s.prog.Run(ctx, d)
		failed = len(skipped) > len(d.Bad)
		s.record(d, skipped)
		select {
		case <-s.last:
		default:
		}
		s.last <- skipped
	}
}

func (s *Source) record(d *cluster.Desired, skipped []string) {
	nodes := make([]string, 0, len(d.Nodes))
	for n := range d.Nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = cluster.Status{Node: s.node, State: cluster.StateHealthy, LastSync: time.Now(), Services: len(d.Services),
		Endpoints: len(d.Endpoints), Policies: len(d.Policies), Nodes: nodes, Routes: len(cluster.Routes(d.Nodes, s.node)),
		Changes: s.prog.Changes(), Skipped: skipped}
}

// desired builds the node's desired state from the informer caches.
func (s *Source) desired() (*cluster.Desired, error) {
	d := cluster.NewDesired()
	f := s.factory
	svcs, err := f.Core().V1().Services().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	slices := f.Discovery().V1().EndpointSlices().Lister()
	for _, svc := range svcs {
		sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
		ess, err := slices.EndpointSlices(svc.Namespace).List(sel)
		if err != nil {
			return nil, err
		}
		for vip, a := range Services(svc, ess) {
			d.Services[vip] = a
		}
	}
	nps, err := f.Networking().V1().NetworkPolicies().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, np := range nps {
		// Informers hand out objects without their TypeMeta; the policy
		// commands take documents that name it.
		np = np.DeepCopy()
		np.APIVersion, np.Kind = "networking.k8s.io/v1", "NetworkPolicy"
		if err := netpol.Validate(np); err != nil {
			d.Bad["networkpolicy "+np.Namespace+"/"+np.Name] = err.Error()
			continue
		}
		d.Policies[np.Namespace+"/"+np.Name] = *np
	}
	pods, err := f.Core().V1().Pods().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if e, ok := Endpoint(p, s.node); ok {
			d.Endpoints[e.IP] = e
		}
	}
	nodes, err := f.Core().V1().Nodes().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		d.Nodes[n.Name] = Node(n)
	}
	return d, nil
}

// Skipped waits for the next reconcile and returns what it skipped.
func (s *Source) Skipped(ctx context.Context) ([]string, error) {
	select {
	case sk := <-s.last:
		return sk, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
