package lb

import (
	"errors"
	"fmt"
	"slices"

	"github.com/hotpath/hotpath/core/services"
)

// Apply adds every service of specs or none: a VIP given twice or one that
// exists already refuses the whole set before the first map write, and a
// service whose commit fails takes the ones added before it away again.
func (s *Store) Apply(specs []services.ServiceSpec) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conflicts(specs); err != nil {
		return 0, fmt.Errorf("service-apply: %w", err)
	}
	specs = slices.Clone(specs)
	for i := range specs {
		specs[i] = s.withDefaults(specs[i])
	}
	// The tables are built on the other CPUs while services are committed.
	pre := s.prebuild(specs)
	defer pre.stop()
	for i, spec := range specs {
		if err := s.create(spec, pre.table(i)); err != nil {
			var errs []error
			for j := i - 1; j >= 0; j-- {
				errs = append(errs, s.del(specs[j].VIP))
			}
			if uerr := errors.Join(errs...); uerr != nil {
				return 0, fmt.Errorf("service-apply: service %d (%s): %w; undoing the %d added before it: %v", i, spec.VIP, err, i, uerr)
			}
			return 0, fmt.Errorf("service-apply: service %d (%s): %w; nothing was added", i, spec.VIP, err)
		}
	}
	return len(specs), nil
}

// conflicts finds a VIP given twice in specs or already a service.
func (s *Store) conflicts(specs []services.ServiceSpec) error {
	seen := make(map[services.VIP]int, len(specs))
	for i, spec := range specs {
		if j, dup := seen[spec.VIP]; dup {
			return fmt.Errorf("services %d and %d both have VIP %s", j, i, spec.VIP)
		}
		seen[spec.VIP] = i
		switch _, err := s.get(spec.VIP); {
		case err == nil:
			return fmt.Errorf("service %d: %s exists; change it with backend add|del or set-algorithm", i, spec.VIP)
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("service %d: %w", i, err)
		}
	}
	return nil
}
