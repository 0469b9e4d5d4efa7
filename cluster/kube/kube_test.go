package kube_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/cluster/kube"
	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

func ptr[T any](v T) *T { return &v }

func slice(name string, eps map[string]discoveryv1.EndpointConditions, ips map[string]string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
	}
	for _, pod := range slices.Sorted(func(yield func(string) bool) {
		for k := range eps {
			if !yield(k) {
				return
			}
		}
	}) {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ips[pod]}, Conditions: eps[pod]})
	}
	return es
}

var (
	ready       = discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)}
	terminating = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}
)

// Service and EndpointSlice changes in a fake clientset reach the real
// datapath through the informers: traffic to the ClusterIP lands on ready
// endpoints, a terminating endpoint gets no new connection, and deleting
// the Service removes the VIP.
func TestPrivilegedKubeServiceThroughVIP(t *testing.T) {
	e2e.Modes(t, kubeServiceThroughVIP)
}

func kubeServiceThroughVIP(t *testing.T, sockLB bool) {
	env := e2e.NewMode(t, sockLB, lab.Options{Pods: []string{"client", "web1", "web2"}})
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("lb"))
	ips := map[string]string{}
	for _, w := range []string{"web1", "web2"} {
		p := env.Lab.Pods[w]
		ips[w] = p.IP.String()
		if _, err := lab.ServeName(p.NS, p.IP.String()+":8080", w); err != nil {
			t.Fatal(err)
		}
	}
	client := fake.NewSimpleClientset()
	prog := cluster.NewProgrammer(cluster.Config{NodeName: "node0"}, cluster.NewSocketDatapath(supervisor.SocketPath(env.StateDir)))
	src := kube.New(client, "node0", prog, hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	api := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.20", SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
	if _, err := client.CoreV1().Services("default").Create(api, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(api, slice("web-a", map[string]discoveryv1.EndpointConditions{"web1": ready, "web2": ready}, ips), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const vip = "10.96.0.20:80/tcp"
	waitBackends(t, env, vip, ips["web1"]+":8080", ips["web2"]+":8080")
	if got := answers(t, env, 30); !got["web1"] || !got["web2"] {
		t.Errorf("30 connections to the ClusterIP reached %v, want both endpoints", got)
	}

	// web2 terminates: it gets no new connection.
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(api, slice("web-a", map[string]discoveryv1.EndpointConditions{"web1": ready, "web2": terminating}, ips), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBackends(t, env, vip, ips["web1"]+":8080")
	if got := answers(t, env, 30); len(got) != 1 || !got["web1"] {
		t.Errorf("with web2 terminating, 30 new connections reached %v, want web1 only", got)
	}

	// ClientIP affinity reaches the service.
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(600))}}
	if _, err := client.CoreV1().Services("default").Update(api, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "affinity 600s", func() bool { s, ok := service(t, env, vip); return ok && s.AffinityTimeout == 600 })

	if err := client.CoreV1().Services("default").Delete(api, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "service gone", func() bool { _, ok := service(t, env, vip); return !ok })
	cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
	defer ccancel()
	if name, err := env.Lab.Pods["client"].NS.AskName(cctx, "tcp", "10.96.0.20:80"); err == nil {
		t.Errorf("deleted ClusterIP still answers (%s)", name)
	}
}

func service(t *testing.T, env *e2e.Env, vip string) (services.ServiceInfo, bool) {
	var svcs []services.ServiceInfo
	env.JSON(&svcs, "lb", "service", "list")
	for _, s := range svcs {
		if s.VIP == vip {
			return s, true
		}
	}
	return services.ServiceInfo{}, false
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitBackends(t *testing.T, env *e2e.Env, vip string, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitFor(t, fmt.Sprintf("%s backends %v", vip, want), func() bool {
		s, ok := service(t, env, vip)
		if !ok {
			return false
		}
		var have []string
		for _, b := range s.Backends {
			have = append(have, b.Address)
		}
		slices.Sort(have)
		return slices.Equal(have, want)
	})
}

// answers opens n new connections from the client pod to the ClusterIP
// and returns which endpoints answered.
func answers(t *testing.T, env *e2e.Env, n int) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		name, err := env.Lab.Pods["client"].NS.AskName(ctx, "tcp", "10.96.0.20:80")
		cancel()
		if err != nil {
			t.Fatalf("connection %d to the ClusterIP: %v", i, err)
		}
		got[name] = true
	}
	return got
}
