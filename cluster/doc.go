// Package cluster takes a node's desired state from etcd and programs the
// node through the same plugin Invoke commands the CLI sends: lb's service
// commands (core/services), the policy plugin's endpoint and policy
// commands (core/netpol) and the tunnel plugin's route commands
// (core/tunnels).
//
// Key layout under a prefix (default "/hotpath"), every value JSON:
//
//	<prefix>/services/<IP:PORT/PROTO>      services.ServiceAddArgs
//	<prefix>/endpoints/<node>/<IP>         netpol.Endpoint (a pod on <node>)
//	<prefix>/policies/<namespace>/<name>   networking/v1 NetworkPolicy
//	<prefix>/nodes/<name>                  Node, attached to the node's lease
//
// Every node programs every service and policy, its own endpoints, and one
// tunnel route per other registered node (its pod CIDR via its underlay
// IP). A node's key lives as long as its lease, so a node that leaves
// removes its routes on every other node.
//
// Programming is a diff of desired against applied (what the plugins list),
// one command per difference: an unchanged service, backend, endpoint or
// route is never touched, so a resync after an outage moves no flow. While
// etcd is unreachable nothing is changed and the status says degraded.
package cluster
