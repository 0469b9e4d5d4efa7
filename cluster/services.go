package cluster

import (
	"context"
	"errors"

	"github.com/hotpath/hotpath/core/services"
)

// syncServices makes the lb plugin's services what want says, one command
// per difference.
func syncServices(ctx context.Context, c *caller, want map[string]services.ServiceAddArgs) error {
	var have []services.ServiceInfo
	if err := c.call(ctx, "service-list", nil, &have); err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, h := range have {
		seen[h.VIP] = true
		w, ok := want[h.VIP]
		if !ok {
			errs = append(errs, c.change(ctx, "service-del", services.ServiceArgs{VIP: h.VIP}))
			continue
		}
		errs = append(errs, syncService(ctx, c, w, h))
	}
	for vip, w := range want {
		if !seen[vip] {
			errs = append(errs, c.change(ctx, "service-add", w))
		}
	}
	return errors.Join(errs...)
}

// syncService changes one existing service in place: backends one by one,
// the algorithm with set-algorithm. Only an affinity change, which has no
// command of its own, re-adds the service.
func syncService(ctx context.Context, c *caller, w services.ServiceAddArgs, h services.ServiceInfo) error {
	if w.AffinityTimeoutSeconds != int64(h.AffinityTimeout) {
		if err := c.change(ctx, "service-del", services.ServiceArgs{VIP: h.VIP}); err != nil {
			return err
		}
		return c.change(ctx, "service-add", w)
	}
	spec, err := w.Spec()
	if err != nil {
		return err
	}
	if (w.Algorithm != "" && spec.Algorithm.String() != h.Algorithm) || (spec.TableSize != 0 && spec.TableSize != h.MaglevTableSize) {
		alg := w.Algorithm
		if alg == "" {
			alg = h.Algorithm
		}
		a := services.SetAlgorithmArgs{VIP: h.VIP, Algorithm: alg, MaglevTableSize: int64(spec.TableSize)}
		if err := c.change(ctx, "service-set-algorithm", a); err != nil {
			return err
		}
	}
	have := map[string]uint16{}
	for _, b := range h.Backends {
		have[b.Address] = b.Weight
	}
	var errs []error
	for _, b := range spec.Backends {
		if wt, ok := have[b.Key()]; !ok || wt != b.Weight {
			errs = append(errs, c.change(ctx, "backend-add", services.BackendArgs{VIP: h.VIP, Backend: b.Arg()}))
		}
		delete(have, b.Key())
	}
	for addr := range have {
		errs = append(errs, c.change(ctx, "backend-del", services.BackendArgs{VIP: h.VIP, Backend: services.BackendArg{Address: addr}}))
	}
	return errors.Join(errs...)
}
