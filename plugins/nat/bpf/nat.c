// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Masquerade, owned by the nat plugin: two stages.
 *
 * hp_nat (slot nat, ingress hook): a packet entering the node from a
 * cluster address to an address outside the cluster CIDRs (and outside
 * exclude CIDRs) that the kernel would route out of the masquerade device
 * leaves with the node's address and a port allocated for its flow, sent
 * out of that device by the stage itself (bpf_redirect_neigh; TTL
 * decremented as the kernel's forwarding would); ICMP echo requests get an
 * identifier the same way. The pipeline runs once per node, where a packet
 * enters it, so this happens at the pod's device rather than the uplink's
 * egress.
 *
 * hp_rev_snat (slot rev-snat, ingress hook): a reply arriving on the
 * masquerade device for an allocated port is translated back to the pod
 * before ct runs, so ct, lb-revnat and policy see the reply of the pod's own
 * flow. ICMP errors about a masqueraded flow are translated back too (outer
 * destination, inner source, all three checksums).
 *
 * rev-snat runs at the masquerade device's ingress only, nat at every other
 * device's ingress. Non-first fragments carry no ports and pass untranslated. */
#include "nat.h"
#include "lib/fib.h"

static __always_inline int nat_snat(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_nat4_key k = {}, rk = {};
	struct hp_nat4_entry *m, *r, rv = {};
	__u16 port = 0;
	__u32 now;

	struct bpf_fib_lookup fib;
	struct iphdr ip;

	if (c->dir != HP_DIR_INGRESS || c->ifindex == nat_ifindex || !(c->parse & HP_P_L4))
		return HP_SLOT_NAT + 1;
	if (c->proto == IPPROTO_ICMP) {
		if (nat_icmp_type(skb, c) != HP_ICMP_ECHO)
			return HP_SLOT_NAT + 1;
	} else if (c->proto != IPPROTO_TCP && c->proto != IPPROTO_UDP) {
		return HP_SLOT_NAT + 1;
	}
	if (!nat_in(c->saddr, nat_cluster_net, nat_cluster_mask, nat_cluster_n) ||
	    nat_in(c->daddr, nat_cluster_net, nat_cluster_mask, nat_cluster_n) ||
	    nat_in(c->daddr, nat_exclude_net, nat_exclude_mask, nat_exclude_n))
		return HP_SLOT_NAT + 1;

	/* Only what the kernel would send out of the masquerade device. */
	if (bpf_skb_load_bytes(skb, c->l3_off, &ip, sizeof(ip)) < 0 ||
	    hp_fib_route(skb, c, &ip, &fib, BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS ||
	    fib.ifindex != nat_ifindex)
		return HP_SLOT_NAT + 1;
	/* Expiring here, or too big for the device: the kernel answers the
	 * pod (time exceeded, fragmentation needed) as for any forwarded
	 * packet. */
	if (ip.ttl <= 1)
		return HP_SLOT_NAT + 1;

	now = hp_ctx_now(c);
	k.daddr = c->daddr;
	k.saddr = c->saddr;
	k.dport = c->dport;
	k.sport = c->sport;
	k.nexthdr = c->proto;
	k.dir = HP_NAT_EGRESS;
	m = bpf_map_lookup_elem(&nat4, &k);
	if (m) {
		port = m->port;
		/* The reply entry must still be this flow's: LRU may have
		 * evicted it (re-create it), or the port may have been taken
		 * over after the flow's CT entry ended (allocate anew). */
		rk.daddr = nat_addr;
		rk.saddr = c->daddr;
		rk.dport = port;
		rk.sport = c->dport;
		rk.nexthdr = c->proto;
		rk.dir = HP_NAT_INGRESS;
		r = bpf_map_lookup_elem(&nat4, &rk);
		if (!r) {
			rv.addr = c->saddr;
			rv.port = c->sport;
			rv.created = now;
			if (!bpf_map_update_elem(&nat4, &rk, &rv, BPF_NOEXIST))
				nat_stat(NAT_S_REPAIRED, 1);
			r = bpf_map_lookup_elem(&nat4, &rk);
		}
		if (!r || r->addr != c->saddr || r->port != c->sport) {
			bpf_map_delete_elem(&nat4, &k);
			port = 0;
		}
	}
	if (!port) {
		port = nat_alloc(c, now);
		if (!port) {
			nat_stat(NAT_S_EXHAUSTED, 1);
			nat_signal_exhausted(c, now);
			return hp_stop(c, HP_R_NAT_EXHAUSTED);
		}
		rv.addr = nat_addr;
		rv.port = port;
		rv.created = now;
		rv.claim = 0;
		bpf_map_update_elem(&nat4, &k, &rv, BPF_ANY);
	}
	if (nat_rewrite(skb, c, 1, c->saddr, nat_addr, c->sport, port) < 0 || hp_ttl_dec(skb, c, &ip) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	c->saddr = nat_addr;
	c->sport = port;
	/* Sent out of the masquerade device from here: the kernel would
	 * take a packet that enters from a pod with the node's own address
	 * for a martian and drop it, so the translated packet never goes
	 * through its forwarding path. */
	c->verdict = HP_V_REDIRECT_NEIGH;
	c->redirect_ifindex = nat_ifindex;
	return HP_SLOT_NAT + 1;
}

/* nat_icmp_error translates an ICMP error about a masqueraded flow: the
 * quoted packet is the one that left, node:port -> remote. */
static __always_inline int nat_icmp_error(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_nat4_key rk = {};
	struct hp_nat4_entry *m;
	struct iphdr in;
	__u32 in_off = c->l4_off + 8, in_l4, icmp_csum = c->l4_off + 2, poff;
	__u16 ports[2], old_check, new_check, old_port;
	__u8 itype;

	if (bpf_skb_load_bytes(skb, in_off, &in, sizeof(in)) < 0 || in.version != 4 || in.ihl < 5)
		return HP_SLOT_REV_SNAT + 1;
	if (in.saddr != nat_addr)
		return HP_SLOT_REV_SNAT + 1;
	in_l4 = in_off + in.ihl * 4;
	rk.daddr = nat_addr;
	rk.saddr = in.daddr;
	rk.nexthdr = in.protocol;
	rk.dir = HP_NAT_INGRESS;
	switch (in.protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (bpf_skb_load_bytes(skb, in_l4, ports, sizeof(ports)) < 0)
			return HP_SLOT_REV_SNAT + 1;
		rk.dport = ports[0];
		rk.sport = ports[1];
		poff = in_l4;
		break;
	case IPPROTO_ICMP:
		if (bpf_skb_load_bytes(skb, in_l4, &itype, 1) < 0 || itype != HP_ICMP_ECHO ||
		    bpf_skb_load_bytes(skb, in_l4 + 4, ports, sizeof(ports[0])) < 0)
			return HP_SLOT_REV_SNAT + 1;
		rk.dport = ports[0];
		rk.sport = 0;
		poff = in_l4 + 4;
		break;
	default:
		return HP_SLOT_REV_SNAT + 1;
	}
	old_port = rk.dport;
	m = bpf_map_lookup_elem(&nat4, &rk);
	if (!m)
		return HP_SLOT_REV_SNAT + 1;

	/* Outer header: destination node -> pod (ICMP has no pseudo header). */
	if (bpf_l3_csum_replace(skb, c->l3_off + offsetof(struct iphdr, check), nat_addr, m->addr, 4) < 0 ||
	    bpf_skb_store_bytes(skb, c->l3_off + offsetof(struct iphdr, daddr), &m->addr, 4, 0) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	/* Quoted header: source node:port -> pod:port, its IP checksum, and
	 * the ICMP checksum over all three changes. The quoted L4 checksum is
	 * left alone: a receiver does not verify it (it may not even be
	 * quoted; for TCP it lies beyond the 8 bytes an ICMP error must carry). */
	old_check = in.check;
	if (bpf_l3_csum_replace(skb, in_off + offsetof(struct iphdr, check), nat_addr, m->addr, 4) < 0 ||
	    bpf_skb_load_bytes(skb, in_off + offsetof(struct iphdr, check), &new_check, 2) < 0 ||
	    bpf_skb_store_bytes(skb, in_off + offsetof(struct iphdr, saddr), &m->addr, 4, 0) < 0 ||
	    bpf_skb_store_bytes(skb, poff, &m->port, 2, 0) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, nat_addr, m->addr, 4) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, old_check, new_check, 2) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, old_port, m->port, 2) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	/* ct, after this slot, matches the error to its flow through the
	 * quoted tuple: leave it in pod terms, as the flow is tracked. */
	c->daddr = m->addr;
	c->inner_saddr = m->addr;
	c->inner_sport = m->port;
	nat_stat(NAT_S_ICMP_ERROR, 1);
	return HP_SLOT_REV_SNAT + 1;
}

static __always_inline int nat_rev(struct __sk_buff *skb, struct hp_ctx *c)
{
	struct hp_nat4_key rk = {};
	struct hp_nat4_entry *m;
	__u32 port;
	int type;

	if (c->dir != HP_DIR_INGRESS || c->ifindex != nat_ifindex || c->daddr != nat_addr ||
	    !(c->parse & HP_P_IPV4))
		return HP_SLOT_REV_SNAT + 1;
	/* The entry program recognised an ICMP error (unreachable, time
	 * exceeded, parameter problem) and parsed what it quotes. */
	if (c->parse & HP_P_ICMP_ERR)
		return nat_icmp_error(skb, c);
	if (!(c->parse & HP_P_L4))
		return HP_SLOT_REV_SNAT + 1;
	if (c->proto == IPPROTO_ICMP) {
		type = nat_icmp_type(skb, c);
		if (type != HP_ICMP_ECHOREPLY)
			return HP_SLOT_REV_SNAT + 1;
	} else if (c->proto != IPPROTO_TCP && c->proto != IPPROTO_UDP) {
		return HP_SLOT_REV_SNAT + 1;
	}
	port = bpf_ntohs(c->dport);
	if (port < nat_port_min || port > nat_port_max)
		return HP_SLOT_REV_SNAT + 1;
	rk.daddr = c->daddr;
	rk.saddr = c->saddr;
	rk.dport = c->dport;
	rk.sport = c->sport;
	rk.nexthdr = c->proto;
	rk.dir = HP_NAT_INGRESS;
	m = bpf_map_lookup_elem(&nat4, &rk);
	if (!m)
		return HP_SLOT_REV_SNAT + 1;
	if (nat_rewrite(skb, c, 0, c->daddr, m->addr, c->dport, m->port) < 0)
		return hp_stop(c, HP_R_STAGE_DROP);
	c->daddr = m->addr;
	c->dport = m->port;
	return HP_SLOT_REV_SNAT + 1;
}

SEC("tc")
int hp_nat(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, nat_snat(skb, c));
}

SEC("tc")
int hp_rev_snat(struct __sk_buff *skb)
{
	struct hp_ctx *c;

	hp_stage_enter(skb, c);
	return hp_stage_exit(skb, c, nat_rev(skb, c));
}

char __license[] SEC("license") = "Dual BSD/GPL";
