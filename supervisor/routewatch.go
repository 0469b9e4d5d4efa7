package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// routingResync is how often the forward stage's copies of the node's
// routing are refreshed without a notification (one may be lost).
const routingResync = 30 * time.Second

// syncRouting refreshes what the forward stage knows of the node's
// routing: the routes with an MTU of their own and whether next hops may
// be remembered at all.
func (s *Supervisor) syncRouting() error {
	if err := s.syncRouteMTUs(); err != nil {
		return err
	}
	return s.syncRules()
}

// syncRules turns remembered next hops off while the node has routing
// rules besides the kernel's three (local, main, default): a rule may
// route on a mark, a port or a user, which a remembered hop's key leaves out.
func (s *Supervisor) syncRules() error {
	rules, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routing rules: %w", err)
	}
	custom := 0
	for _, r := range rules {
		if !defaultRule(r) {
			custom++
		}
	}
	return s.entry.SetHopsOff(custom > 0)
}

// defaultRule: one of the rules every IPv4 namespace starts with.
func defaultRule(r netlink.Rule) bool {
	switch {
	case r.Priority == 0 && r.Table == unix.RT_TABLE_LOCAL,
		r.Priority == 32766 && r.Table == unix.RT_TABLE_MAIN,
		r.Priority == 32767 && r.Table == unix.RT_TABLE_DEFAULT:
		return r.Mark == 0 && r.Src == nil && r.Dst == nil && r.IifName == "" && r.OifName == ""
	}
	return false
}

// watchRouting keeps the forward stage's view of the node's routing
// current. Every route, neighbour, address, link or rule change of the
// node's namespace first forgets the remembered next hops (the next packet
// of each flow asks the FIB again), then resyncs route MTUs and rules;
// every routingResync they are resynced anyway.
func (s *Supervisor) watchRouting(ctx context.Context) {
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	if err := subscribeRouting(poke, done); err != nil {
		s.log.Warn("routing: no notifications, polling", "error", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		t := time.NewTicker(routingResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				if err := s.entry.ForgetHops(); err != nil {
					s.log.Warn("routing", "error", err)
				}
			case <-t.C:
			}
			if err := s.syncRouting(); err != nil {
				s.log.Warn("routing", "error", err)
			}
		}
	}()
}

// subscribeRouting calls poke on every routing notification of the
// current namespace until done closes.
func subscribeRouting(poke func(), done chan struct{}) error {
	routes := make(chan netlink.RouteUpdate, 64)
	neighs := make(chan netlink.NeighUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	if err := netlink.RouteSubscribe(routes, done); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	if err := netlink.NeighSubscribe(neighs, done); err != nil {
		return fmt.Errorf("neighbours: %w", err)
	}
	if err := netlink.LinkSubscribe(links, done); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	if err := netlink.AddrSubscribe(addrs, done); err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	go drain(routes, poke)
	go drainNeighbours(neighs, poke)
	go drain(links, poke)
	go drain(addrs, poke)
	return subscribeRules(poke, done)
}

// drain pokes once per update until the subscription closes ch.
func drain[T any](ch <-chan T, poke func()) {
	for range ch {
		poke()
	}
}

// neighKey names a neighbour entry.
type neighKey struct {
	ifindex int
	ip      string
}

// neighSeen is what a remembered hop depends on of a neighbour entry: the
// FIB lookup gives a hop only for a valid entry, and takes its MAC.
type neighSeen struct {
	valid bool
	mac   string
}

// nudValid are the states in which bpf_fib_lookup uses an entry (the
// kernel's NUD_VALID).
const nudValid = netlink.NUD_PERMANENT | netlink.NUD_NOARP | netlink.NUD_REACHABLE |
	netlink.NUD_PROBE | netlink.NUD_STALE | netlink.NUD_DELAY

// drainNeighbours pokes on the neighbour updates that can change a
// remembered hop: an entry that appears, goes, becomes valid or invalid, or
// changes its MAC. The kernel also reports every move between valid states
// (reachable, stale, delay, probe: each entry ages through them all the
// time), which changes nothing a hop holds.
func drainNeighbours(ch <-chan netlink.NeighUpdate, poke func()) {
	seen := map[neighKey]neighSeen{}
	for u := range ch {
		if neighChanged(seen, u) {
			poke()
		}
	}
}

// neighChanged records u in seen and tells whether it changes a hop.
func neighChanged(seen map[neighKey]neighSeen, u netlink.NeighUpdate) bool {
	k := neighKey{u.LinkIndex, u.IP.String()}
	prev, known := seen[k]
	if u.Type == unix.RTM_DELNEIGH {
		delete(seen, k)
		return true
	}
	now := neighSeen{valid: u.State&nudValid != 0, mac: u.HardwareAddr.String()}
	seen[k] = now
	return !known || now != prev
}

// subscribeRules: the netlink package has no rule subscription, so a raw
// socket joins the IPv4 rule group; any message is a change.
func subscribeRules(poke func(), done chan struct{}) error {
	sock, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_RULE)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	// A blocked receive is not woken by a close: wake every second to see
	// whether the watch is over.
	if err := sock.SetReceiveTimeout(&unix.Timeval{Sec: 1}); err != nil {
		sock.Close()
		return fmt.Errorf("rules: %w", err)
	}
	go func() {
		defer sock.Close()
		for {
			select {
			case <-done:
				return
			default:
			}
			msgs, _, err := sock.Receive()
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				return
			}
			if len(msgs) > 0 {
				poke()
			}
		}
	}()
	return nil
}
