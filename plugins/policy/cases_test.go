package policy

// Policy sets drawn from the upstream Kubernetes NetworkPolicy e2e suite
// (test/e2e/network/netpol), on its cluster of pods a, b, c in namespaces x
// and z (y would be YAML 1.1 for true). Pod k of the lab has 10.240.k.2: x/a .1, x/b .2, x/c .3, z/a .4,
// z/b .5, z/c .6.
var truthCases = []struct{ name, yaml string }{
	{"deny-all-ingress", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`},
	{"allow-all-ingress-over-deny", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: x}
spec:
  podSelector: {}
  ingress: [{}]
`},
	{"deny-all-egress", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: z}
spec:
  podSelector: {}
  policyTypes: [Egress]
`},
	{"allow-same-namespace", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: same-ns, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
`},
	{"allow-from-namespace", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: z}
`},
	{"allow-from-pod-label", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-b, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - podSelector:
        matchLabels: {pod: b}
`},
	{"allow-from-pod-label-any-namespace", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-b-anywhere, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - namespaceSelector: {}
      podSelector:
        matchLabels: {pod: b}
`},
	{"allow-namespace-and-pod", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: y-and-c, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: z}
      podSelector:
        matchLabels: {pod: c}
`},
	{"allow-namespace-or-pod", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: y-or-c, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: z}
    - podSelector:
        matchLabels: {pod: c}
`},
	{"allow-port-80-only", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: port-80, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - ports:
    - {port: 80, protocol: TCP}
`},
	{"allow-port-81-from-namespace", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: z}
    ports:
    - port: 81
`},
	{"ipblock-with-except", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidr-except, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - ipBlock:
        cidr: 10.240.0.0/16
        except: [10.240.2.0/24, 10.240.5.2/32]
`},
	{"egress-port-range", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-range, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Egress]
  egress:
  - ports:
    - {protocol: TCP, port: 79, endPort: 80}
`},
	{"egress-udp-53-and-range", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-dns, namespace: z}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - {protocol: UDP, port: 53}
  - to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: x}
    ports:
    - {protocol: TCP, port: 81, endPort: 1000}
`},
	{"multiple-policies-unioned", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-on-80, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
    ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: c-on-81, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: c}}
    ports: [{port: 81}]
`},
	{"ingress-and-egress", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: both, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: a}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}
  egress:
  - to:
    - podSelector: {}
`},
	{"match-expressions", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: exprs, namespace: z}
spec:
  podSelector:
    matchExpressions:
    - {key: pod, operator: In, values: [a, b]}
  ingress:
  - from:
    - namespaceSelector: {}
      podSelector:
        matchExpressions:
        - {key: pod, operator: NotIn, values: [c]}
`},
	{"egress-ipblock-except", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-cidr, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: b}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock:
        cidr: 10.240.4.0/22
        except: [10.240.6.0/24]
    ports:
    - {protocol: TCP, port: 80}
    - {protocol: UDP, port: 53}
`},
	{"deny-egress-x-allow-ingress-y", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: x}
spec:
  podSelector:
    matchLabels: {pod: c}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-from-x-c, namespace: z}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}
      podSelector: {matchLabels: {pod: c}}
  - from:
    - podSelector: {}
    ports: [{protocol: UDP, port: 53}]
`},
}
