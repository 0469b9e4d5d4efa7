package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"maps"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hotpath/hotpath/core/netpol"
)

// syncEndpoints makes the policy plugin's endpoints this node's desired ones.
func syncEndpoints(ctx context.Context, c *caller, want map[string]netpol.Endpoint) error {
	var have []netpol.Endpoint
	if err := c.call(ctx, "endpoint-list", nil, &have); err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, h := range have {
		seen[h.IP] = true
		w, ok := want[h.IP]
		switch {
		case !ok:
			errs = append(errs, c.change(ctx, "endpoint-del", netpol.EndpointDelArgs{IP: h.IP}))
		case w.Namespace != h.Namespace || !maps.Equal(w.Labels, h.Labels):
			errs = append(errs, c.change(ctx, "endpoint-add", w))
		}
	}
	for ip, w := range want {
		if !seen[ip] {
			errs = append(errs, c.change(ctx, "endpoint-add", w))
		}
	}
	return errors.Join(errs...)
}

// syncPolicies applies the policies whose document changed since this sync
// last applied them (all of them after a start: policy-apply swaps rule
// tables whole, so re-applying an unchanged one moves nothing) and deletes
// the ones no longer wanted.
func syncPolicies(ctx context.Context, c *caller, want map[string]networkingv1.NetworkPolicy, applied map[string]string) error {
	var have []netpol.PolicyInfo
	if err := c.call(ctx, "policy-list", nil, &have); err != nil {
		return err
	}
	var errs []error
	for _, h := range have {
		ref := h.Namespace + "/" + h.Name
		if _, ok := want[ref]; !ok {
			errs = append(errs, c.change(ctx, "policy-delete", netpol.DeleteArgs{Namespace: h.Namespace, Name: h.Name}))
			delete(applied, ref)
		}
	}
	var args netpol.ApplyArgs
	sums := map[string]string{}
	for ref, np := range want {
		b, _ := json.Marshal(np)
		if applied[ref] != string(b) {
			args.Policies = append(args.Policies, np)
			sums[ref] = string(b)
		}
	}
	if len(args.Policies) > 0 {
		if err := c.change(ctx, "policy-apply", args); err != nil {
			return errors.Join(append(errs, err)...)
		}
		maps.Copy(applied, sums)
	}
	return errors.Join(errs...)
}
