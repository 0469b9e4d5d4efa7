// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket-level load balancing (cgroup v2 sock_addr programs), owned by the lb
 * plugin and attached by the supervisor to the configured cgroup. See
 * lb_sock.h for how a socket is translated and what the per-packet path
 * still does. */
#include "lb_sock.h"

SEC("cgroup/connect4")
int hp_sock_connect4(struct bpf_sock_addr *ctx)
{
	return lb_sock_xlate(ctx, LB_SOCK_CONNECT);
}

SEC("cgroup/sendmsg4")
int hp_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return lb_sock_xlate(ctx, LB_SOCK_SENDMSG);
}

SEC("cgroup/recvmsg4")
int hp_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	return lb_sock_reverse(ctx);
}

SEC("cgroup/getpeername4")
int hp_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	return lb_sock_reverse(ctx);
}

char __license[] SEC("license") = "Dual BSD/GPL";
