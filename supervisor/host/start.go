package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/hotpath/hotpath/core/abi"
	"github.com/hotpath/hotpath/core/plugin"
)

// Start verifies and starts a plugin binary, completes the go-plugin
// handshake and checks the plugin's Description against the supervisor's
// ABI version and spec.Name. On any failure the process is gone when Start
// returns. ctx bounds Describe; the handshake is bounded by ~10s or ctx's
// deadline, whichever comes first.
func Start(ctx context.Context, spec Spec, log hclog.Logger) (*Instance, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	inst, err := start(ctx, spec, log)
	if err != nil {
		return nil, fmt.Errorf("start plugin %s: %w", spec.Name, err)
	}
	return inst, nil
}

func start(ctx context.Context, spec Spec, log hclog.Logger) (*Instance, error) {
	if spec.Name == "" {
		return nil, errors.New("empty name")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkBinary(spec.Path); err != nil {
		return nil, err
	}
	var secure *goplugin.SecureConfig
	if spec.SHA256 != "" {
		sum, err := hex.DecodeString(spec.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("sha256 %q: want %d hex digits", spec.SHA256, 2*sha256.Size)
		}
		// A hash.Hash is stateful: never share one between clients.
		secure = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	env := append(os.Environ(), spec.Env...)
	// Ours come last: exec keeps the last value of a duplicated key.
	env = append(env, plugin.LogEnv+"="+spec.LogPath)
	if spec.Owner != "" {
		env = append(env, OwnerEnv+"="+filepath.Clean(spec.Owner))
	}
	if spec.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o700); err != nil {
			return nil, fmt.Errorf("log dir: %w", err)
		}
	}
	if spec.SocketDir != "" {
		if err := makeSocketDir(spec.SocketDir); err != nil {
			return nil, err
		}
		// UnixSocketConfig.TempDir only takes effect with a RunnerFunc;
		// with a plain Cmd the plugin picks its socket directory from this
		// variable alone.
		env = append(env, goplugin.EnvUnixSocketDir+"="+spec.SocketDir)
	}
	timeout := startTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}

	cmd := exec.Command(spec.Path)
	cmd.Env = env
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C or SIGHUP aimed at the supervisor's
		// group does not reach plugins that must outlive it, and stop can
		// kill whatever a plugin forked.
		Setpgid: true,
		// A pidfd from clone itself: no window in which the pid could be
		// reaped and reused before we watch it.
		PidFD: &pidfd,
	}
	stderr := &tail{max: 512}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.PluginSet(),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     timeout,
		SkipHostEnv:      true, // env above already holds it, in our order
		UnixSocketConfig: &goplugin.UnixSocketConfig{TempDir: spec.SocketDir},
		Logger:           log,
		Stderr:           stderr,
	})
	rpc, err := client.Client()
	var p *proc
	if pidfd >= 0 {
		var perr error
		if p, perr = childProc(cmd.Process.Pid, pidfd); perr != nil && err == nil {
			err = perr
		}
	} else if err == nil {
		err = errors.New("no pidfd for the plugin process (needs Linux 5.3)")
	}
	if err != nil {
		if !abort(client, cmd, p, log.With("plugin", spec.Name)) {
			cmd = nil // still being reaped: ProcessState is not ours to read
		}
		return nil, handshakeError(err, spec, cmd, stderr, timeout)
	}
	inst := &Instance{
		Name:    spec.Name,
		Spec:    spec,
		Pid:     cmd.Process.Pid,
		Started: time.Now(),
		client:  client,
		rpc:     rpc,
		proc:    p,
		group:   true,
		log:     log.With("plugin", spec.Name),
		stopped: make(chan struct{}),
	}
	inst.Reattach = ReattachFrom(client.ReattachConfig(), client.NegotiatedVersion())
	inst.Reattach.Exe, _ = Exe(inst.Pid)
	if err := inst.describe(ctx, spec.Name, spec.Config); err != nil {
		inst.Kill()
		return nil, err
	}
	inst.log.Info("plugin started", "pid", inst.Pid, "version", inst.Desc.Version)
	return inst, nil
}

// Exe is the file process pid runs, from /proc (without a " (deleted)"
// suffix).
func Exe(pid int) (string, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// abort cleans up after a failed handshake. go-plugin has already SIGKILLed
// the process; its Kill then reaps it, which sets cmd.ProcessState. It
// reports whether that has happened.
func abort(c *goplugin.Client, cmd *exec.Cmd, p *proc, log hclog.Logger) bool {
	if cmd.Process != nil {
		// Whatever the plugin forked may hold the stdio pipes that
		// go-plugin's Kill waits for. The group id stays reserved while
		// its dead leader is unreaped or any member lives.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if p != nil {
		return stop(c, p, true, log)
	}
	killed := make(chan struct{})
	go func() {
		c.Kill()
		close(killed)
	}()
	return waitFor(killed, killTimeout)
}

// errABI marks a plugin built against another pipeline ABI.
var errABI = errors.New("abi version mismatch")

// describe fetches and checks the Description of a freshly connected plugin,
// given its config. Any minor protocol version of our major version is
// accepted: callers check ProtocolMinor before using a later feature.
func (i *Instance) describe(ctx context.Context, name string, config json.RawMessage) error {
	raw, err := i.rpc.Dispense(plugin.Name)
	if err != nil {
		return fmt.Errorf("dispense: %w", err)
	}
	i.Datapath = raw.(plugin.Datapath)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	desc, err := i.Datapath.Describe(ctx, &plugin.DescribeRequest{Config: config})
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	if desc.ABIVersion != abi.Version {
		return fmt.Errorf("%w: plugin %d, supervisor %d", errABI, desc.ABIVersion, abi.Version)
	}
	if desc.Name != name {
		return fmt.Errorf("plugin describes itself as %q", desc.Name)
	}
	if desc.ProtocolMinor != plugin.ProtocolMinor {
		i.log.Info("plugin speaks another minor protocol version", "plugin", plugin.VersionString(plugin.ProtocolVersion, desc.ProtocolMinor),
			"supervisor", plugin.VersionString(plugin.ProtocolVersion, plugin.ProtocolMinor))
	}
	i.Desc = desc
	return nil
}

func checkBinary(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("binary %s: no such file", path)
	case err != nil:
		return fmt.Errorf("binary %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("binary %s: is a directory", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("binary %s: not executable (mode %04o)", path, fi.Mode().Perm())
	}
	return nil
}

// makeSocketDir creates dir 0700, or checks that an existing one is private:
// anyone who can connect to a plugin's socket can drive the datapath.
func makeSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket dir %s: not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("socket dir %s: mode %04o, want 0700", dir, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("socket dir %s: owned by uid %d, not %d", dir, st.Uid, os.Geteuid())
	}
	return nil
}

// ErrProtocol marks a plugin of another major protocol version, refused at
// the handshake.
var ErrProtocol = errors.New("plugin protocol major version mismatch")

// incompatible is go-plugin's handshake error for another ProtocolVersion.
var incompatible = regexp.MustCompile(`^incompatible API version with plugin\. Plugin version: (\d+)`)

// handshakeError turns go-plugin's start errors, written for humans running
// Terraform, into one line that says what went wrong with which binary.
func handshakeError(err error, spec Spec, cmd *exec.Cmd, stderr *tail, timeout time.Duration) error {
	if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
		actual, herr := fileSHA256(spec.Path)
		if herr != nil {
			actual = "unknown (" + herr.Error() + ")"
		}
		return fmt.Errorf("binary %s: checksum mismatch: sha256 %s, want %s", spec.Path, actual, strings.ToLower(spec.SHA256))
	}
	msg := err.Error()
	first, _, _ := strings.Cut(msg, "\n")
	if m := incompatible.FindStringSubmatch(first); m != nil {
		return fmt.Errorf("binary %s: %w: plugin speaks protocol %s.x, supervisor speaks %s",
			spec.Path, ErrProtocol, m[1], plugin.VersionString(plugin.ProtocolVersion, plugin.ProtocolMinor))
	}
	notPlugin := "binary " + spec.Path + " is not a hotpath plugin"
	var out error
	switch {
	case strings.HasPrefix(first, "Unrecognized remote plugin message: "):
		line := strings.TrimPrefix(first, "Unrecognized remote plugin message: ")
		if line != "" {
			out = fmt.Errorf("%s: unrecognized handshake %q", notPlugin, line)
			break
		}
		out = fmt.Errorf("%s: exited before the handshake%s", notPlugin, exitStatus(cmd))
	case strings.HasPrefix(first, "plugin exited before we could connect"):
		out = fmt.Errorf("%s: exited before the handshake%s", notPlugin, exitStatus(cmd))
	case strings.HasPrefix(first, "timeout while waiting for plugin to start"):
		out = fmt.Errorf("%s: no handshake within %v", notPlugin, timeout.Round(time.Millisecond))
	default:
		out = fmt.Errorf("handshake: %s", first)
	}
	if s := stderr.String(); s != "" {
		out = fmt.Errorf("%w, stderr: %q", out, s)
	}
	return out
}

// exitStatus describes how the process ended, if it has been reaped.
func exitStatus(cmd *exec.Cmd) string {
	if cmd == nil || cmd.ProcessState == nil {
		return ""
	}
	return " (" + cmd.ProcessState.String() + ")"
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tail keeps the last max bytes of a plugin's stderr, to explain a plugin
// that dies during the handshake.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
