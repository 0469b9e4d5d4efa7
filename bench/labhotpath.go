package bench

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/hotpath/hotpath/core/services"
	"github.com/hotpath/hotpath/supervisor"
)

// setupHotpath runs the real supervisor with the ct and lb plugins on the
// lab's devices and configures the same services as the iptables and
// nftables variants: `ahead` fillers first, in one `lb service apply`, then
// the two measured services with `lb service add`. Fillers use random
// selection, so they cost no Maglev table each (their packets never come);
// the measured services use Maglev with the default table size, the
// costlier of the two selections on a new flow.
func setupHotpath(c *Context, e *labEnv, ahead int) error {
	h, err := startHotpath(c, e)
	if err != nil {
		return err
	}
	took, err := h.applyServices(e, "fillers.json", servicesAhead(ahead))
	if err != nil {
		return err
	}
	c.Logf("hotpath lab %s: %d filler services applied in %v", e.lab.ID, ahead, took.Round(time.Millisecond))
	return addMeasured(e, h)
}

// addMeasured adds the two measured services (Maglev, default M) and points
// the client at them.
func addMeasured(e *labEnv, h *hotpathRun) error {
	for _, s := range []service{
		{vip: connVIP, backends: e.backendPorts(rrPort)},
		{vip: tputVIP, backends: e.backendPorts(iperfPort)[:1]},
	} {
		if err := h.addService(s, "maglev"); err != nil {
			return err
		}
	}
	e.connAddr, e.tputAddr = connVIP.String(), tputVIP.String()
	return nil
}

// setupHotpathMaglev is setupHotpath with Maglev fillers (the default
// M=16381, three backends each): the scale row where every service owns a
// table.
func setupHotpathMaglev(c *Context, e *labEnv, ahead int) error {
	h, err := startHotpath(c, e)
	if err != nil {
		return err
	}
	took, err := h.apply(e, "fillers.json", serviceArgs(servicesAhead(ahead), "maglev"))
	if err != nil {
		return err
	}
	c.Logf("hotpath lab %s: %d Maglev filler services applied in %v", e.lab.ID, ahead, took.Round(time.Millisecond))
	return addMeasured(e, h)
}

// setupHotpathDirect runs the same supervisor without any service: the
// client dials the backends as in plain routing, and every packet still
// runs the whole pipeline (lb finds no service, ct tracks the flow). Set
// against the VIP variants it splits their cost into the pipeline's and
// the translation's.
func setupHotpathDirect(c *Context, e *labEnv, _ int) error {
	if _, err := startHotpath(c, e); err != nil {
		return err
	}
	e.connAddr = e.directAddrs()
	return nil
}

// startHotpath starts the supervisor with the ct and lb plugins and has the
// lab stop it.
func startHotpath(c *Context, e *labEnv) (*hotpathRun, error) {
	h, err := startSupervisor(c, e, []supervisor.PluginConfig{{Name: "ct"}, {Name: "lb"}})
	if err != nil {
		return nil, err
	}
	e.onClose(h.stop)
	return h, nil
}

// applyServices writes svcs (random selection) to a file in the lab and
// adds them with one `hotpath lb service apply`; it returns the command's
// wall time.
func (h *hotpathRun) applyServices(e *labEnv, name string, svcs []service) (time.Duration, error) {
	return h.apply(e, name, serviceArgs(svcs, "random"))
}

func (h *hotpathRun) apply(e *labEnv, name string, args []services.ServiceAddArgs) (time.Duration, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return 0, err
	}
	path, err := e.writeFile(name, string(b))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := h.cli("lb", "service", "apply", path); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// addService is `hotpath lb service add VIP/tcp --backend ... --algorithm alg`.
func (h *hotpathRun) addService(s service, alg string) error {
	args := []string{"lb", "service", "add", s.vip.String() + "/tcp", "--algorithm", alg}
	for _, b := range s.backends {
		args = append(args, "--backend", b.String())
	}
	_, err := h.cli(args...)
	return err
}

// addUDPService is addService for a UDP VIP.
func (h *hotpathRun) addUDPService(vip netip.AddrPort, backends []netip.AddrPort, alg string) error {
	args := []string{"lb", "service", "add", vip.String() + "/udp", "--algorithm", alg}
	for _, b := range backends {
		args = append(args, "--backend", b.String())
	}
	if _, err := h.cli(args...); err != nil {
		return fmt.Errorf("add UDP service %s: %w", vip, err)
	}
	return nil
}
