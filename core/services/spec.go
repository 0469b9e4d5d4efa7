package services

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hotpath/hotpath/core/abi"
)

// Proto is the L4 protocol of a service: TCP or UDP.
type Proto uint8

// Protocols a service can have (IP protocol numbers).
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// ParseProto reads "tcp" or "udp" (any case).
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("protocol %q: want tcp or udp", s)
}

// VIP is a service's frontend: IPv4 address, port and protocol.
type VIP struct {
	Addr  netip.Addr
	Port  uint16
	Proto Proto
}

// String is the form ParseVIP reads: "10.96.0.10:80/tcp".
func (v VIP) String() string {
	return netip.AddrPortFrom(v.Addr, v.Port).String() + "/" + v.Proto.String()
}

// ParseVIP reads "IP:PORT/PROTO", e.g. "10.96.0.10:80/tcp".
func ParseVIP(s string) (VIP, error) {
	ap, ps, ok := strings.Cut(s, "/")
	if !ok {
		return VIP{}, fmt.Errorf("service %q: want IP:PORT/PROTO, e.g. 10.96.0.10:80/tcp", s)
	}
	proto, err := ParseProto(ps)
	if err != nil {
		return VIP{}, fmt.Errorf("service %q: %w", s, err)
	}
	a, err := parseAddrPort(ap)
	if err != nil {
		return VIP{}, fmt.Errorf("service %q: %w", s, err)
	}
	return VIP{Addr: a.Addr(), Port: a.Port(), Proto: proto}, nil
}

// parseAddrPort accepts a unicast IPv4 address that can be routed to, with
// a non-zero port.
func parseAddrPort(s string) (netip.AddrPort, error) {
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: want IPv4:PORT", s)
	}
	ip := a.Addr()
	switch {
	case !ip.Is4():
		return netip.AddrPort{}, fmt.Errorf("address %q: only IPv4 is supported", s)
	case ip.IsUnspecified(), ip.IsLoopback(), ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.AddrPort{}, fmt.Errorf("address %q: not a unicast address a service can use", s)
	case a.Port() == 0:
		return netip.AddrPort{}, fmt.Errorf("address %q: port must be 1-65535", s)
	}
	return a, nil
}

// Backend is one validated backend of a service.
type Backend struct {
	Addr   netip.AddrPort
	Weight uint16
}

// DefaultWeight is a backend's weight when none is given.
const DefaultWeight = 1

// Key is the backend's identity in the Maglev table ("10.240.2.2:8080"):
// stable and the same on every node, unlike its numeric id.
func (b Backend) Key() string { return b.Addr.String() }

// String is the form ParseBackend reads.
func (b Backend) String() string { return fmt.Sprintf("%s,weight=%d", b.Addr, b.Weight) }

// ParseBackend reads "IP:PORT[,weight=N]", the CLI form of a backend.
func ParseBackend(s string) (Backend, error) {
	parts := strings.Split(s, ",")
	arg := BackendArg{Address: parts[0]}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if k != "weight" {
			return Backend{}, fmt.Errorf("backend %q: unknown option %q (have weight=N)", s, p)
		}
		w, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Backend{}, fmt.Errorf("backend %q: weight %q is not a number", s, v)
		}
		arg.Weight = &w
	}
	return arg.Parse()
}

// BackendArg is a backend in the JSON arguments of a command. An omitted
// weight is DefaultWeight; an explicit 0 is an error.
type BackendArg struct {
	Address string `json:"address"`
	Weight  *int64 `json:"weight,omitempty"`
}

// Arg turns b back into its JSON form.
func (b Backend) Arg() BackendArg {
	w := int64(b.Weight)
	return BackendArg{Address: b.Addr.String(), Weight: &w}
}

// Parse validates the argument.
func (a BackendArg) Parse() (Backend, error) {
	addr, err := parseAddrPort(a.Address)
	if err != nil {
		return Backend{}, fmt.Errorf("backend: %w", err)
	}
	w := int64(DefaultWeight)
	if a.Weight != nil {
		w = *a.Weight
	}
	if w <= 0 || w > 65535 {
		return Backend{}, fmt.Errorf("backend %s: weight %d is outside 1-65535", a.Address, w)
	}
	return Backend{Addr: addr, Weight: uint16(w)}, nil
}

// Algorithm is a service's backend selection.
type Algorithm uint8

// Algorithms, as the datapath knows them.
const (
	Random Algorithm = Algorithm(abi.AbiHpLbAlgorithmHP_LB_ALG_RANDOM)
	Maglev Algorithm = Algorithm(abi.AbiHpLbAlgorithmHP_LB_ALG_MAGLEV)
	// Vendor leaves selection to a plugin in the lb-select slot; the
	// built-in lb-select treats it as random.
	Vendor Algorithm = Algorithm(abi.AbiHpLbAlgorithmHP_LB_ALG_VENDOR)
)

func (a Algorithm) String() string {
	switch a {
	case Random:
		return "random"
	case Maglev:
		return "maglev"
	case Vendor:
		return "vendor"
	}
	return fmt.Sprintf("algorithm-%d", uint8(a))
}

// ParseAlgorithm reads "random", "maglev" or "vendor".
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(s) {
	case "random":
		return Random, nil
	case "maglev":
		return Maglev, nil
	case "vendor":
		return Vendor, nil
	}
	return 0, fmt.Errorf("algorithm %q: want maglev, random or vendor", s)
}

// TableSizes are the Maglev table sizes M a service may have: primes, so that
// every skip in [1, M-1] is coprime with M and each backend's probe sequence
// visits every slot. Pick M well above the backend count (the Maglev paper
// suggests M > 100*N) to keep imbalance and disruption low.
var TableSizes = []uint32{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

// DefaultTableSize is M for services and configs that name none.
const DefaultTableSize = 16381

// ValidTableSize checks a Maglev table size M; 0 means "the default".
func ValidTableSize(m int64) error {
	if m == 0 || (m > 0 && m <= math.MaxUint32 && slices.Contains(TableSizes, uint32(m))) {
		return nil
	}
	return fmt.Errorf("maglev table size %d: must be one of %v", m, TableSizes)
}

// MaxAffinityTimeout is Kubernetes' bound for sessionAffinityConfig
// clientIP.timeoutSeconds.
const MaxAffinityTimeout = 86400

// ValidAffinityTimeout checks a ClientIP affinity timeout in seconds; 0
// disables affinity.
func ValidAffinityTimeout(secs int64) error {
	if secs < 0 || secs > MaxAffinityTimeout {
		return fmt.Errorf("affinity timeout %ds: must be 0 (off) to %d seconds", secs, MaxAffinityTimeout)
	}
	return nil
}
