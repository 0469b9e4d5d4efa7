package nat

import (
	"strings"
	"testing"
)

func TestConfigRefusesBadValuesNamingTheKey(t *testing.T) {
	base := `"masquerade_device": "uplink", "cluster_cidrs": ["10.240.0.0/16"]`
	for raw, key := range map[string]string{
		``:                                     "masquerade_device",
		`{}`:                                   "masquerade_device",
		`{"cluster_cidrs": ["10.240.0.0/16"]}`: "masquerade_device",
		`{"masquerade_device": "uplink"}`:      "cluster_cidrs",
		`{` + base + `, "masquerade_ip": "fe80::1"}`:              "masquerade_ip",
		`{` + base + `, "masquerade_ip": "node"}`:                 "masquerade_ip",
		`{` + base + `, "port_range": "60999-32768"}`:             "port_range",
		`{` + base + `, "port_range": "0-100"}`:                   "port_range",
		`{` + base + `, "port_range": "1000"}`:                    "port_range",
		`{` + base + `, "port_range": "1000-70000"}`:              "port_range",
		`{` + base + `, "port_range": "30100-30200"}`:             "port_range",
		`{` + base + `, "exclude_cidrs": ["10.0.0.0/33"]}`:        "exclude_cidrs",
		`{"masquerade_device": "uplink", "cluster_cidrs": ["x"]}`: "cluster_cidrs",
		`{` + base + `, "nodeport_range": "b-a"}`:                 "nodeport_range",
		`{` + base + `, "gc_interval": "1ms"}`:                    "gc_interval",
		`{` + base + `, "masquerade_devic": "eth1"}`:              "masquerade_devic",
	} {
		_, _, err := ParseConfig([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("config %s: error %v, want one naming %s", raw, err, key)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	_, s, err := ParseConfig([]byte(`{"masquerade_device": "uplink", "cluster_cidrs": ["10.240.1.7/16"], "exclude_cidrs": ["192.0.2.0/25"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.PortMin != 32768 || s.PortMax != 60999 || s.NodePortMin != 30000 || s.NodePortMax != 32767 {
		t.Errorf("ranges %+v", s)
	}
	if s.Cluster[0].String() != "10.240.0.0/16" || s.Exclude[0].String() != "192.0.2.0/25" || s.Addr.IsValid() {
		t.Errorf("cidrs %v %v, addr %v", s.Cluster, s.Exclude, s.Addr)
	}
}
