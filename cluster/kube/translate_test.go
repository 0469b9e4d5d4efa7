package kube_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpath/hotpath/cluster/kube"
)

func TestServicesTranslation(t *testing.T) {
	ips := map[string]string{"a": "10.240.1.2", "b": "10.240.2.2", "c": "10.240.3.2", "d": "10.240.4.2"}
	es := slice("s", map[string]discoveryv1.EndpointConditions{
		"a": ready, "b": terminating, "c": {}, // unset conditions count as ready
		"d": {Ready: ptr(false)},
	}, ips)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.30", SessionAffinity: corev1.ServiceAffinityClientIP,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "other", Port: 81, Protocol: corev1.ProtocolUDP}, {Name: "sctp", Port: 82, Protocol: corev1.ProtocolSCTP}},
	}}
	got := kube.Services(svc, []*discoveryv1.EndpointSlice{es})
	http, ok := got["10.96.0.30:80/tcp"]
	if !ok || len(got) != 2 {
		t.Fatalf("services %v, want 10.96.0.30:80/tcp and :81/udp (no SCTP)", got)
	}
	var addrs []string
	for _, b := range http.Backends {
		addrs = append(addrs, b.Address)
	}
	if len(addrs) != 2 || addrs[0] != "10.240.1.2:8080" || addrs[1] != "10.240.3.2:8080" {
		t.Errorf("backends %v, want the ready a and c only", addrs)
	}
	if http.AffinityTimeoutSeconds != 10800 {
		t.Errorf("ClientIP affinity without a timeout: %d, want Kubernetes' default 10800", http.AffinityTimeoutSeconds)
	}
	if udp := got["10.96.0.30:81/udp"]; len(udp.Backends) != 0 {
		t.Errorf("udp port has backends %v, but the slice names no port \"other\"", udp.Backends)
	}
	for _, mod := range []func(*corev1.Service){
		func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone },
		func(s *corev1.Service) { s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "" },
		func(s *corev1.Service) { s.Spec.ClusterIP = "fd00::1" },
	} {
		s := svc.DeepCopy()
		mod(s)
		if got := kube.Services(s, []*discoveryv1.EndpointSlice{es}); len(got) != 0 {
			t.Errorf("service %+v: got %v, want nothing", s.Spec, got)
		}
	}
}

func TestEndpointAndNode(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns1", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{PodIP: "10.240.1.2", Phase: corev1.PodRunning}}
	if e, ok := kube.Endpoint(pod, "n1"); !ok || e.IP != "10.240.1.2" || e.Namespace != "ns1" || e.Labels["app"] != "x" {
		t.Errorf("endpoint %+v %v", e, ok)
	}
	if _, ok := kube.Endpoint(pod, "n2"); ok {
		t.Error("a pod of another node became an endpoint")
	}
	pod.Spec.HostNetwork = true
	if _, ok := kube.Endpoint(pod, "n1"); ok {
		t.Error("a host-network pod became an endpoint")
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Spec: corev1.NodeSpec{PodCIDR: "10.242.0.0/24"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n2"}, {Type: corev1.NodeInternalIP, Address: "192.0.2.7"}}}}
	if got := kube.Node(n); got.IP != "192.0.2.7" || got.PodCIDR != "10.242.0.0/24" || got.Name != "n2" {
		t.Errorf("node %+v", got)
	}
}
