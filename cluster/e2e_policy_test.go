package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpath/hotpath/cluster"
	"github.com/hotpath/hotpath/core/netpol"
)

// Endpoints and policies written to etcd reach the policy plugin of the
// node they belong to, and go when their keys go; a refused key is named
// in status and changes nothing.
func TestPrivilegedClusterEtcdPolicy(t *testing.T) {
	c := newClusterLab(t, 1)
	env := c.Nodes[0]
	env.Extra = []string{"--kvstore-endpoints", c.Etcd.ClientURL, "--node-name", "node0"}
	env.StartSupervisor(env.PluginFlag("ct"), env.PluginFlag("policy"))
	c.waitState(cluster.StateHealthy, 10*time.Second)

	web := env.Lab.Pods["web"].IP.String()
	put := func(key string, v any) {
		t.Helper()
		if err := c.store().Put(context.Background(), key, v); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	k := cluster.Keys{Prefix: cluster.DefaultPrefix}
	put(k.Endpoint("node0", web), netpol.Endpoint{IP: web, Namespace: "shop", Labels: map[string]string{"app": "web"}})
	put(k.Endpoint("node1", "10.240.9.9"), netpol.Endpoint{IP: "10.240.9.9", Namespace: "shop"}) // another node's
	np := networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "deny"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	put(k.Policy("shop", "deny"), np)
	put(k.Service("10.96.0.1:80/tcp"), map[string]string{"vip": "not json of a service"})

	waitFor(t, "endpoint and policy on node0", func() bool {
		var eps []netpol.Endpoint
		var ps []netpol.PolicyInfo
		env.JSON(&eps, "endpoint", "list")
		env.JSON(&ps, "policy", "list")
		return len(eps) == 1 && eps[0].IP == web && eps[0].Labels["app"] == "web" &&
			len(ps) == 1 && ps[0].Name == "deny" && len(ps[0].Selected) == 1
	})
	st := c.status(0)
	if st.Endpoints != 1 || st.Policies != 1 || !contains(st.Skipped, "refused") {
		t.Errorf("status %+v: want 1 endpoint, 1 policy and the bad service key refused", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if env.Lab.Pods["client"].NS.Echo(ctx, "tcp", web+":8080", []byte("x")) == nil {
		t.Error("the deny-all policy from etcd does not deny")
	}

	for _, key := range []string{k.Policy("shop", "deny"), k.Endpoint("node0", web)} {
		if err := c.store().Delete(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "endpoint and policy gone", func() bool {
		var eps []netpol.Endpoint
		var ps []netpol.PolicyInfo
		env.JSON(&eps, "endpoint", "list")
		env.JSON(&ps, "policy", "list")
		return len(eps) == 0 && len(ps) == 0
	})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if err := env.Lab.Pods["client"].NS.Echo(ctx2, "tcp", web+":8080", []byte("x")); err != nil {
		t.Errorf("after the policy left etcd, web still unreachable: %v", err)
	}
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
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
