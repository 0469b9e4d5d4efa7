package services

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParseVIP(t *testing.T) {
	good := map[string]string{
		"10.96.0.10:80/tcp":    "10.96.0.10:80/tcp",
		"10.96.0.10:53/UDP":    "10.96.0.10:53/udp",
		"192.0.2.1:65535/tcp":  "192.0.2.1:65535/tcp",
		"172.16.0.1:1/udp":     "172.16.0.1:1/udp",
		"100.64.0.1:8443/Tcp":  "100.64.0.1:8443/tcp",
		"10.255.255.255:1/tcp": "10.255.255.255:1/tcp",
	}
	for in, want := range good {
		v, err := ParseVIP(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseVIP(%q) = %s, %v; want %s", in, v, err, want)
		}
	}
	bad := map[string]string{
		"":                         "IP:PORT/PROTO",
		"10.96.0.10:80":            "IP:PORT/PROTO",
		"10.96.0.10/tcp":           "IPv4:PORT",
		"10.96.0.10:80/sctp":       "tcp or udp",
		"10.96.0.10:80/":           "tcp or udp",
		"10.96.0.10:0/tcp":         "port must be",
		"10.96.0.10:65536/tcp":     "IPv4:PORT",
		"10.96.0.10:-1/tcp":        "IPv4:PORT",
		"10.96.0.10:http/tcp":      "IPv4:PORT",
		"10.96.0:80/tcp":           "IPv4:PORT",
		"10.96.0.256:80/tcp":       "IPv4:PORT",
		"[fd00::1]:80/tcp":         "only IPv4",
		"[::ffff:10.0.0.1]:80/tcp": "only IPv4",
		"0.0.0.0:80/tcp":           "not a unicast",
		"127.0.0.1:80/tcp":         "not a unicast",
		"224.0.0.1:80/udp":         "not a unicast",
		"255.255.255.255:80/udp":   "not a unicast",
		" 10.96.0.10:80/tcp":       "IPv4:PORT",
		"10.96.0.10:80/tcp/x":      "tcp or udp",
	}
	for in, want := range bad {
		if _, err := ParseVIP(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseVIP(%q): error %v, want one saying %q", in, err, want)
		}
	}
}

func TestParseBackend(t *testing.T) {
	for in, want := range map[string]string{
		"10.240.2.2:8080":              "10.240.2.2:8080,weight=1",
		"10.240.2.2:8080,weight=7":     "10.240.2.2:8080,weight=7",
		"10.240.2.2:8080,weight=65535": "10.240.2.2:8080,weight=65535",
	} {
		b, err := ParseBackend(in)
		if err != nil || b.String() != want {
			t.Errorf("ParseBackend(%q) = %s, %v; want %s", in, b, err, want)
		}
	}
	for in, want := range map[string]string{
		"10.240.2.2":                   "IPv4:PORT",
		"10.240.2.2:0":                 "port must be",
		"10.240.2.2:8080,weight=0":     "outside 1-65535",
		"10.240.2.2:8080,weight=-3":    "outside 1-65535",
		"10.240.2.2:8080,weight=1e3":   "not a number",
		"10.240.2.2:8080,weight=":      "not a number",
		"10.240.2.2:8080,weight=65536": "outside 1-65535",
		"10.240.2.2:8080,w=2":          "unknown option",
		"10.240.2.2:8080,":             "unknown option",
		"[2001:db8::1]:80":             "only IPv4",
		"127.0.0.1:80":                 "not a unicast",
		"host:80":                      "IPv4:PORT",
	} {
		if _, err := ParseBackend(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBackend(%q): error %v, want one saying %q", in, err, want)
		}
	}
}

func TestBackendArgJSON(t *testing.T) {
	var a BackendArg
	if err := json.Unmarshal([]byte(`{"address":"10.0.0.1:80"}`), &a); err != nil {
		t.Fatal(err)
	}
	if b, err := a.Parse(); err != nil || b.Weight != DefaultWeight {
		t.Fatalf("omitted weight: %+v %v, want weight %d", b, err, DefaultWeight)
	}
	if err := json.Unmarshal([]byte(`{"address":"10.0.0.1:80","weight":0}`), &a); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Parse(); err == nil {
		t.Fatal("explicit weight 0 accepted")
	}
}

func TestServiceAddArgsSpec(t *testing.T) {
	w := func(v int64) *int64 { return &v }
	s, err := ServiceAddArgs{VIP: "10.96.0.10:80/tcp", Algorithm: "Maglev", MaglevTableSize: 251, AffinityTimeoutSeconds: 10800,
		Backends: []BackendArg{{Address: "10.0.0.2:80", Weight: w(3)}, {Address: "10.0.0.1:80"}}}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if s.Algorithm != Maglev || s.TableSize != 251 || s.AffinityTimeout != 10800 || len(s.Backends) != 2 || s.Backends[0].Weight != 3 {
		t.Fatalf("spec %+v", s)
	}
	if s, err := (ServiceAddArgs{VIP: "10.96.0.10:80/tcp"}).Spec(); err != nil || s.Algorithm != 0 || s.TableSize != 0 {
		t.Fatalf("defaults: %+v %v (zero means the plugin's default)", s, err)
	}
	for name, a := range map[string]ServiceAddArgs{
		"bad vip":            {VIP: "10.96.0.10"},
		"bad algorithm":      {VIP: "10.96.0.10:80/tcp", Algorithm: "least-conn"},
		"table not prime":    {VIP: "10.96.0.10:80/tcp", MaglevTableSize: 16384},
		"table negative":     {VIP: "10.96.0.10:80/tcp", MaglevTableSize: -251},
		"table too big":      {VIP: "10.96.0.10:80/tcp", MaglevTableSize: 262139},
		"affinity negative":  {VIP: "10.96.0.10:80/tcp", AffinityTimeoutSeconds: -1},
		"affinity too long":  {VIP: "10.96.0.10:80/tcp", AffinityTimeoutSeconds: 86401},
		"weight 0":           {VIP: "10.96.0.10:80/tcp", Backends: []BackendArg{{Address: "10.0.0.1:80", Weight: w(0)}}},
		"duplicate backend":  {VIP: "10.96.0.10:80/tcp", Backends: []BackendArg{{Address: "10.0.0.1:80"}, {Address: "10.0.0.1:80", Weight: w(2)}}},
		"more than M":        {VIP: "10.96.0.10:80/tcp", MaglevTableSize: 251, Backends: manyBackends(252)},
		"backend without ip": {VIP: "10.96.0.10:80/tcp", Backends: []BackendArg{{Address: ":80"}}},
	} {
		if _, err := a.Spec(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSetAlgorithmAndBackendArgs(t *testing.T) {
	if _, alg, m, err := (SetAlgorithmArgs{VIP: "10.96.0.10:80/udp", Algorithm: "random", MaglevTableSize: 509}).Parse(); err != nil || alg != Random || m != 509 {
		t.Fatalf("set-algorithm args: %v %d %v", alg, m, err)
	}
	for _, a := range []SetAlgorithmArgs{{VIP: "x", Algorithm: "random"}, {VIP: "10.96.0.10:80/udp", Algorithm: ""}, {VIP: "10.96.0.10:80/udp", Algorithm: "maglev", MaglevTableSize: 2}} {
		if _, _, _, err := a.Parse(); err == nil {
			t.Errorf("%+v accepted", a)
		}
	}
	if _, _, err := (BackendArgs{VIP: "10.96.0.10:80/udp", Backend: BackendArg{Address: "10.0.0.1"}}).Parse(); err == nil {
		t.Error("backend without port accepted")
	}
}

func manyBackends(n int) []BackendArg {
	out := make([]BackendArg, n)
	for i := range out {
		out[i] = BackendArg{Address: fmt.Sprintf("10.241.%d.%d:80", i/250, 1+i%250)}
	}
	return out
}
