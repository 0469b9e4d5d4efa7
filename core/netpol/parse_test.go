package netpol

import (
	"strings"
	"testing"
)

const good = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: 80, endPort: 90}]
`

func TestParseManyDocuments(t *testing.T) {
	second := strings.Replace(good, "name: web", "name: db", 1)
	nps, err := Parse([]byte("# comment\n---\n" + good + "---\n" + second + "\n---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(nps) != 2 || nps[0].Name != "web" || nps[1].Name != "db" || nps[1].Namespace != "prod" {
		t.Fatalf("parsed %d policies: %+v", len(nps), nps)
	}
	def, err := Parse([]byte(strings.Replace(good, ", namespace: prod", "", 1)))
	if err != nil || def[0].Namespace != "default" {
		t.Fatalf("no namespace: %v %q, want default", err, def[0].Namespace)
	}
}

// TestParseErrorsNameDocumentAndField: every refusal names the document and
// the offending field, and returns no policies at all.
func TestParseErrorsNameDocumentAndField(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"yaml", "apiVersion: [", "document 2"},
		{"unknown field", strings.Replace(good, "podSelector:", "podSelectr:", 1), `unknown field "podSelectr"`},
		{"kind", strings.Replace(good, "kind: NetworkPolicy", "kind: Pod", 1), "apiVersion/kind"},
		{"named port", strings.Replace(good, "port: 80, endPort: 90", "port: http", 1), "spec.ingress[0].ports[0].port: named port"},
		{"sctp port", strings.Replace(good, "port: 80, endPort: 90", "port: 80, protocol: SCTP", 1), "SCTP ports are not parsed"},
		{"end before port", strings.Replace(good, "endPort: 90", "endPort: 70", 1), "spec.ingress[0].ports[0].endPort"},
		{"protocol", strings.Replace(good, "port: 80, endPort: 90", "port: 80, protocol: ICMP", 1), "spec.ingress[0].ports[0].protocol"},
		{"except outside", strings.Replace(good, "10.1.0.0/16", "11.0.0.0/16", 1), "spec.ingress[0].from[0].ipBlock: except[0]"},
		{"bad cidr", strings.Replace(good, "10.0.0.0/8", "10.0.0.0/33", 1), "spec.ingress[0].from[0].ipBlock: cidr"},
		{"selector op", strings.Replace(good, "{matchLabels: {app: web}}", "{matchExpressions: [{key: a, operator: Near}]}", 1), "spec.podSelector"},
		{"policy type", strings.Replace(good, "spec:\n", "spec:\n  policyTypes: [Sideways]\n", 1), "spec.policyTypes[0]"},
		{"empty peer", strings.Replace(good, "- ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", "- {}", 1), "spec.ingress[0].from[0]: must specify"},
		{"bad name", strings.Replace(good, "name: web", "name: Web_1", 1), "metadata.name"},
		{"duplicate", good, "already defined by document 1"},
	}
	for _, c := range cases {
		nps, err := Parse([]byte(good + "---\n" + c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || nps != nil {
			t.Errorf("%s: %v (%d policies), want an error containing %q and nothing", c.name, err, len(nps), c.want)
		}
		if err != nil && c.name != "yaml" && !strings.Contains(err.Error(), "document 2") {
			t.Errorf("%s: %v does not name document 2", c.name, err)
		}
	}
	if _, err := Parse([]byte("# nothing\n")); err == nil {
		t.Error("empty input accepted")
	}
}

func TestEndpointValidate(t *testing.T) {
	for _, e := range []Endpoint{
		{IP: "fe80::1", Namespace: "a"},
		{IP: "10.0.0.1", Namespace: "A_b"},
		{IP: "10.0.0.1", Namespace: "a", Labels: map[string]string{"bad key!": "v"}},
		{IP: "10.0.0.1", Namespace: "a", Labels: map[string]string{"k": "bad value!"}},
	} {
		if err := e.Validate(); err == nil {
			t.Errorf("%+v accepted", e)
		}
	}
	ok := Endpoint{IP: "10.0.0.1", Namespace: "a", Labels: map[string]string{"app.kubernetes.io/name": "web"}}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
	if IdentityKey("a", map[string]string{"x": "1"}) == IdentityKey("b", map[string]string{"x": "1"}) {
		t.Error("identity key ignores the namespace")
	}
}
