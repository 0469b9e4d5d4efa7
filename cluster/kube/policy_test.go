package kube_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/cluster/kube"
	"github.com/hotpath/hotpath/core/netpol"
	"github.com/hotpath/hotpath/internal/e2e"
	"github.com/hotpath/hotpath/lab"
	"github.com/hotpath/hotpath/supervisor"
)

// Pods of this node become policy endpoints with their labels, and a
// NetworkPolicy from the API is enforced on real traffic until it is
// deleted; another node's pod is not an endpoint here.
func TestPrivilegedKubePodsAndPolicies(t *testing.T) {
	env := e2e.New(t, "client", "web")
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("policy"))
	web := env.Lab.Pods["web"]
	if _, err := lab.EchoServer(web.NS, web.IP.String()+":8080"); err != nil {
		t.Fatal(err)
	}
	client := fake.NewSimpleClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeName: "node0"}, Status: corev1.PodStatus{PodIP: web.IP.String(), Phase: corev1.PodRunning}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "far", Namespace: "shop"},
			Spec: corev1.PodSpec{NodeName: "node1"}, Status: corev1.PodStatus{PodIP: "10.250.0.9", Phase: corev1.PodRunning}},
	)
	prog := cluster.NewProgrammer(cluster.Config{NodeName: "node0"}, cluster.NewSocketDatapath(supervisor.SocketPath(env.StateDir)))
	src := kube.New(client, "node0", prog, hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "endpoint of the web pod", func() bool {
		var eps []netpol.Endpoint
		env.JSON(&eps, "endpoint", "list")
		return len(eps) == 1 && eps[0].IP == web.IP.String() && eps[0].Labels["app"] == "web" && eps[0].Namespace == "shop"
	})
	reach := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return env.Lab.Pods["client"].NS.Echo(ctx, "tcp", web.IP.String()+":8080", []byte("x"))
	}
	if err := reach(); err != nil {
		t.Fatalf("no policy yet, web unreachable: %v", err)
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := client.NetworkingV1().NetworkPolicies("shop").Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "policy applied", func() bool {
		var ps []netpol.PolicyInfo
		env.JSON(&ps, "policy", "list")
		return len(ps) == 1 && len(ps[0].Selected) == 1
	})
	if reach() == nil {
		t.Error("deny-all ingress policy from the API does not deny")
	}
	if err := client.NetworkingV1().NetworkPolicies("shop").Delete(context.Background(), "deny", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "policy removed", func() bool {
		var ps []netpol.PolicyInfo
		env.JSON(&ps, "policy", "list")
		return len(ps) == 0
	})
	if err := reach(); err != nil {
		t.Errorf("policy deleted, web still unreachable: %v", err)
	}
	if st := src.Status(); st.State != cluster.StateHealthy || st.Endpoints != 1 {
		t.Errorf("status %+v: want healthy with 1 endpoint", st)
	}
}
