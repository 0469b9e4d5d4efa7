/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The entry program's first half: context and parse. */
#ifndef HOTPATH_ENTRY_H
#define HOTPATH_ENTRY_H

#include "pipeline.h"
#include "parse.h"

/* hp_entry_begin prepares the packet's context. It returns 0 with *cp set
 * when the packet goes on into the pipeline, or 1 with *ret holding the tc
 * verdict when it is finished already (no context, not IPv4, malformed, a
 * later fragment whose first was not seen). */
static __always_inline int hp_entry_begin(struct __sk_buff *skb, __u32 dir, struct hp_ctx **cp, int *ret)
{
	struct hp_ctx *c;
	int r;

	skb->cb[HP_CB_DIR] = dir;
	c = hp_ctx_get(dir);
	if (!c) {
		hp_count(HP_R_NO_CONTEXT, dir, skb->len);
		*ret = TC_ACT_SHOT;
		return 1;
	}
	__builtin_memset(c, 0, sizeof(*c));
	c->dir = dir;
	c->len = skb->len;
	c->ifindex = skb->ifindex;
	c->slot = HP_SLOTS; /* drops before the first stage are the entry program's */

	r = hp_parse(skb, c);
	if (r != HP_PARSE_OK) {
		/* Every packet that leaves here is counted under its reason. */
		switch (r) {
		case HP_PARSE_ERROR:
			*ret = hp_drop(skb, c, HP_R_PARSE_ERROR);
			return 1;
		case HP_PARSE_FRAG_NOT_FOUND:
			*ret = hp_drop(skb, c, HP_R_FRAG_NOT_FOUND);
			return 1;
		case HP_PARSE_IPV6:
			c->reason = HP_R_PASS_IPV6;
			break;
		case HP_PARSE_VLAN:
			c->reason = HP_R_PASS_VLAN;
			break;
		default:
			c->reason = HP_R_PASS_OTHER;
		}
		*ret = hp_finish(skb, c);
		return 1;
	}
	*cp = c;
	return 0;
}

#endif /* HOTPATH_ENTRY_H */
