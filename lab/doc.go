// Package lab builds throwaway network labs out of Linux network namespaces,
// for privileged datapath tests, the demo and the bench.
//
// A lab is one node namespace and any number of pod namespaces. Each pod is
// wired to the node by a veth pair: the node side is named "lxc<pod>", the pod
// side "eth0". Pod k (k = 1, 2, ... in creation order) gets 10.240.k.2/24 on
// eth0 with a default route via 10.240.k.1, the address of the node-side veth.
// The node namespace forwards IPv4, so pod-to-pod traffic is routed through the
// node, where the datapath programs attach:
//
//	pod a: eth0 10.240.1.2          pod b: eth0 10.240.2.2
//	        |                               |
//	node:  lxca 10.240.1.1  <-routes->  lxcb 10.240.2.1
//
// With Options.External the lab also has an "ext" namespace behind the
// node's "uplink" device (192.0.2.1 on the node, 192.0.2.2 in ext) that knows
// only its own subnet: it answers pods only when the node masquerades them
// (see external.go).
//
// NewMulti builds two such labs joined by an underlay veth pair (multi.go):
// node i's pods live in 10.(240+i).k.0/24, each node has its own bpffs and
// runs its own supervisor, and only an overlay connects their pods.
//
// rp_filter is off in the node namespace because datapath tests DNAT, which
// makes replies arrive on interfaces the reverse-path check would reject.
//
// Nothing is created in, attached to or routed through the root network
// namespace: each veth pair is created inside the node namespace with its peer
// placed straight into the pod namespace. Namespace names carry a random lab
// ID ("hp" + 6 hex digits) so parallel test binaries never collide, and Close
// removes only what this Lab created: processes (by pid), in-process servers,
// the private bpffs mount, the namespaces and the lab directory.
//
// Processes started with Lab.Start run under `ip netns exec`. That also gives
// them a private mount namespace with a freshly mounted /sys, so /sys/fs/bpf is
// empty for them. Options.MountBPFFS mounts a private bpffs under the lab
// directory instead, which stays visible under `ip netns exec` and is
// unmounted by Close.
//
// Options.Cgroup gives the lab a cgroup v2 directory of its own (Lab.Cgroup,
// under a cgroup2 mount in the lab directory, which `ip netns exec` leaves
// visible) for socket-level programs: Lab.EnterCgroup moves the test process
// in, so its in-process sockets belong to it, and Lab.StartInCgroup starts a
// process born inside it. Close moves the test process back, removes the
// cgroup and unmounts the hierarchy (see cgroup.go).
//
// In-process sockets are created with NS.Do, which runs a function on a locked
// OS thread switched into the namespace; sockets keep their namespace after the
// thread switches back, so NS.Dial, NS.Listen and the servers in this package
// can be used from any goroutine.
//
// Privileged tests are named TestPrivileged* and start with Privileged(t),
// which skips them when the machine cannot run them (or fails them when
// CI=true, so CI never silently skips the datapath tests).
package lab
