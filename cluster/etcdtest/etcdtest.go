// Package etcdtest runs a real etcd server (the distribution's etcd
// binary, installed by scripts/deps.sh) for tests.
package etcdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one etcd process.
type Server struct {
	Dir       string
	ClientURL string
	peerURL   string
	cmd       *exec.Cmd
	wrap      []string
}

// Binary finds etcd.
func Binary() (string, error) {
	for _, p := range []string{os.Getenv("HOTPATH_ETCD"), "/usr/bin/etcd"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no etcd binary (apt-get install etcd-server, or make deps)")
}

// Start runs etcd listening on ip:port (client) and ip:port+1 (peer). wrap
// prefixes the command, e.g. {"ip", "netns", "exec", NS}, to run it inside
// a namespace. It is stopped at the end of the test.
func Start(t testing.TB, ip string, port int, wrap ...string) *Server {
	t.Helper()
	s := New(t.TempDir(), ip, port, wrap...)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New prepares a server with its data under dir; Start runs it.
func New(dir, ip string, port int, wrap ...string) *Server {
	return &Server{Dir: dir, ClientURL: fmt.Sprintf("http://%s", net.JoinHostPort(ip, fmt.Sprint(port))),
		peerURL: fmt.Sprintf("http://%s", net.JoinHostPort(ip, fmt.Sprint(port+1))), wrap: wrap}
}

// Start (re)starts the process on the same data dir and waits for it to
// answer.
func (s *Server) Start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	args := append(append([]string{}, s.wrap...), bin, "--name", "t", "--data-dir", filepath.Join(s.Dir, "data"),
		"--listen-client-urls", s.ClientURL, "--advertise-client-urls", s.ClientURL,
		"--listen-peer-urls", s.peerURL, "--initial-advertise-peer-urls", s.peerURL,
		"--initial-cluster", "t="+s.peerURL, "--log-level", "error")
	s.cmd = exec.Command(args[0], args[1:]...)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(s.Dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	host := strings.TrimPrefix(s.ClientURL, "http://")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s.healthy(host) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(s.Dir, "etcd.log"))
	s.Stop()
	return fmt.Errorf("etcd on %s did not answer within 20s: %s", s.ClientURL, out)
}

// healthy asks /health through the wrapper (the client URL may live in
// another namespace).
func (s *Server) healthy(host string) bool {
	args := append(append([]string{}, s.wrap...), "curl", "-sf", "-m", "1", "http://"+host+"/health")
	if _, err := exec.LookPath("curl"); err != nil {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	out, err := exec.Command(args[0], args[1:]...).Output()
	return err == nil && strings.Contains(string(out), "true")
}

// Stop kills the process (the data dir stays for a restart).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}
