package cluster

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := []Config{
		{},
		{KVStoreEndpoints: []string{"http://10.0.0.1:2379"}, NodeName: "n1"},
		{KVStoreEndpoints: []string{"http://a:2379", "https://b:2379"}, NodeName: "n1.example", NodeIP: "10.0.0.2", PodCIDR: "10.241.0.0/24"},
		{Kubernetes: "in-cluster", NodeName: "n1"},
	}
	for _, c := range good {
		c.Defaults()
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := map[string]Config{
		"need kvstore_endpoints":      {NodeName: "n1"},
		"want http://HOST:PORT":       {KVStoreEndpoints: []string{"10.0.0.1:2379"}, NodeName: "n1"},
		"node name":                   {KVStoreEndpoints: []string{"http://a:2379"}},
		"Node_1":                      {KVStoreEndpoints: []string{"http://a:2379"}, NodeName: "Node_1"},
		"underlay IPv4":               {KVStoreEndpoints: []string{"http://a:2379"}, NodeName: "n", NodeIP: "::1"},
		"IPv4 prefix":                 {KVStoreEndpoints: []string{"http://a:2379"}, NodeName: "n", PodCIDR: "10.0.0.1"},
		"exclude each other":          {KVStoreEndpoints: []string{"http://a:2379"}, Kubernetes: "in-cluster", NodeName: "n"},
		"this node's Kubernetes name": {Kubernetes: "in-cluster"},
	}
	for want, c := range bad {
		c.Defaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want an error with %q", c, err, want)
		}
	}
}

func TestDesiredRefusesBadKeys(t *testing.T) {
	k := Keys{Prefix: "/hotpath"}
	d := NewDesired()
	d.set(k, "n1", k.Service("10.96.0.1:80/tcp"), []byte(`{"vip":"10.96.0.1:80/tcp","backends":[{"address":"10.240.1.2:8080"}]}`))
	d.set(k, "n1", k.Service("10.96.0.2:80/tcp"), []byte(`{"vip":"10.96.0.3:80/tcp"}`))           // key and value differ
	d.set(k, "n1", k.Service("10.96.0.4:80/tcp"), []byte(`{"vip":"10.96.0.4:80/tcp","x":1}`))     // unknown field
	d.set(k, "n1", k.Endpoint("n2", "10.240.1.2"), []byte(`{"ip":"10.240.1.2","namespace":"a"}`)) // another node's
	d.set(k, "n1", k.Node("n2"), []byte(`{"name":"n2","ip":"192.0.2.2","pod_cidr":"10.1.0.0/24"}`))
	d.set(k, "n1", "/hotpath/bogus/x", []byte(`{}`))
	if len(d.Services) != 1 || len(d.Endpoints) != 0 || len(d.Nodes) != 1 {
		t.Errorf("desired %+v", d)
	}
	if len(d.Bad) != 3 {
		t.Errorf("bad keys %v, want 3", d.Bad)
	}
	// A refused update changes nothing (the service stays as it was), and
	// a delete clears the refusal.
	d.set(k, "n1", k.Service("10.96.0.1:80/tcp"), []byte(`nonsense`))
	if len(d.Services) != 1 || d.Bad[k.Service("10.96.0.1:80/tcp")] == "" {
		t.Errorf("a refused update: services %v, bad %v", d.Services, d.Bad)
	}
	d.set(k, "n1", k.Service("10.96.0.1:80/tcp"), nil)
	if _, ok := d.Bad[k.Service("10.96.0.1:80/tcp")]; ok {
		t.Error("a deleted key is still listed as refused")
	}
}
