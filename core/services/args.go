package services

import (
	"fmt"
	"slices"
)

// Arguments and results of the service commands an lb plugin answers through
// Invoke. The CLI builds the same structs and validates them with the same
// methods before sending.

// ServiceAddArgs are the arguments of "service-add".
type ServiceAddArgs struct {
	VIP                    string       `json:"vip"`
	Backends               []BackendArg `json:"backends"`
	Algorithm              string       `json:"algorithm,omitempty"`                // default: the plugin's config
	MaglevTableSize        int64        `json:"maglev_table_size,omitempty"`        // default: the plugin's config
	AffinityTimeoutSeconds int64        `json:"affinity_timeout_seconds,omitempty"` // 0: no affinity
}

// ServiceSpec is a validated ServiceAddArgs. Zero Algorithm or TableSize
// stand for the plugin's defaults.
type ServiceSpec struct {
	VIP             VIP
	Backends        []Backend
	Algorithm       Algorithm
	TableSize       uint32
	AffinityTimeout uint32
}

// MaxBackends bounds a service's backends: the datapath's slot count is 16
// bits wide.
const MaxBackends = 65535

// Spec validates the arguments completely.
func (a ServiceAddArgs) Spec() (ServiceSpec, error) {
	var s ServiceSpec
	var err error
	if s.VIP, err = ParseVIP(a.VIP); err != nil {
		return s, err
	}
	if a.Algorithm != "" {
		if s.Algorithm, err = ParseAlgorithm(a.Algorithm); err != nil {
			return s, fmt.Errorf("service %s: %w", s.VIP, err)
		}
	}
	if err := ValidTableSize(a.MaglevTableSize); err != nil {
		return s, fmt.Errorf("service %s: %w", s.VIP, err)
	}
	s.TableSize = uint32(a.MaglevTableSize)
	if err := ValidAffinityTimeout(a.AffinityTimeoutSeconds); err != nil {
		return s, fmt.Errorf("service %s: %w", s.VIP, err)
	}
	s.AffinityTimeout = uint32(a.AffinityTimeoutSeconds)
	if len(a.Backends) > MaxBackends {
		return s, fmt.Errorf("service %s: %d backends, at most %d", s.VIP, len(a.Backends), MaxBackends)
	}
	for _, ba := range a.Backends {
		b, err := ba.Parse()
		if err != nil {
			return s, fmt.Errorf("service %s: %w", s.VIP, err)
		}
		if slices.ContainsFunc(s.Backends, func(o Backend) bool { return o.Addr == b.Addr }) {
			return s, fmt.Errorf("service %s: backend %s given twice", s.VIP, b.Addr)
		}
		s.Backends = append(s.Backends, b)
	}
	if s.TableSize != 0 && len(s.Backends) > int(s.TableSize) {
		return s, fmt.Errorf("service %s: %d backends do not fit a maglev table of %d", s.VIP, len(s.Backends), s.TableSize)
	}
	return s, nil
}

// ServiceArgs name a service: "service-del".
type ServiceArgs struct {
	VIP string `json:"vip"`
}

// SetAlgorithmArgs are the arguments of "service-set-algorithm". A
// MaglevTableSize other than 0 also changes the service's table size.
type SetAlgorithmArgs struct {
	VIP             string `json:"vip"`
	Algorithm       string `json:"algorithm"`
	MaglevTableSize int64  `json:"maglev_table_size,omitempty"`
}

// Parse validates the arguments.
func (a SetAlgorithmArgs) Parse() (VIP, Algorithm, uint32, error) {
	vip, err := ParseVIP(a.VIP)
	if err != nil {
		return vip, 0, 0, err
	}
	alg, err := ParseAlgorithm(a.Algorithm)
	if err != nil {
		return vip, 0, 0, fmt.Errorf("service %s: %w", vip, err)
	}
	if err := ValidTableSize(a.MaglevTableSize); err != nil {
		return vip, 0, 0, fmt.Errorf("service %s: %w", vip, err)
	}
	return vip, alg, uint32(a.MaglevTableSize), nil
}

// BackendArgs are the arguments of "backend-add" and "backend-del" (whose
// weight is ignored).
type BackendArgs struct {
	VIP     string     `json:"vip"`
	Backend BackendArg `json:"backend"`
}

// Parse validates the arguments.
func (a BackendArgs) Parse() (VIP, Backend, error) {
	vip, err := ParseVIP(a.VIP)
	if err != nil {
		return vip, Backend{}, err
	}
	b, err := a.Backend.Parse()
	if err != nil {
		return vip, b, fmt.Errorf("service %s: %w", vip, err)
	}
	return vip, b, nil
}

// ServiceInfo is one service in the answer of "service-list".
type ServiceInfo struct {
	VIP             string        `json:"vip"`
	ID              uint32        `json:"id"`
	Algorithm       string        `json:"algorithm"`
	Backends        []BackendInfo `json:"backends"`
	MaglevTableSize uint32        `json:"maglev_table_size"`
	AffinityTimeout uint32        `json:"affinity_timeout"` // seconds, 0: off
}

// BackendInfo is one backend of a listed service.
type BackendInfo struct {
	Address string `json:"address"`
	Weight  uint16 `json:"weight"`
	ID      uint32 `json:"id"`
}

// ApplyResult is the answer of "service-apply".
type ApplyResult struct {
	Added int `json:"added"`
}
