// Package deploy holds the deployment files; its tests check them.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/hotpath/hotpath/supervisor"
)

// The unit validates with systemd-analyze once @BINDIR@ names a real
// binary, and keeps plugins alive across supervisor restarts.
func TestSystemdUnitVerifies(t *testing.T) {
	raw, err := os.ReadFile("hotpath.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"\nKillMode=process\n", "\nRestart=always\n", "\nRuntimeDirectoryPreserve=yes\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze not installed: %v", err)
	}
	bindir := t.TempDir()
	if err := os.WriteFile(filepath.Join(bindir, "hotpath"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hotpath.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "@BINDIR@", bindir)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "hotpath.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The DaemonSet decodes strictly into the Kubernetes API types, runs in
// the host network with the bpffs and state mounts, and adds only the
// capabilities it needs.
func TestDaemonSetDecodes(t *testing.T) {
	raw, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(raw, &ds); err != nil {
		t.Fatalf("decode daemonset.yaml: %v", err)
	}
	if ds.Kind != "DaemonSet" || ds.APIVersion != "apps/v1" {
		t.Errorf("kind %s/%s", ds.APIVersion, ds.Kind)
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("not hostNetwork")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || (sc.Privileged != nil && *sc.Privileged) {
		t.Fatal("container is privileged or names no capabilities")
	}
	add := slices.Sorted(slices.Values(sc.Capabilities.Add))
	if !slices.Equal(add, []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON"}) || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities add %v drop %v, want add BPF NET_ADMIN PERFMON, drop ALL", add, sc.Capabilities.Drop)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for name, path := range map[string]string{"bpffs": "/sys/fs/bpf", "state": "/run/hotpath"} {
		if mounts[name] != path || hostPaths[name] != path {
			t.Errorf("volume %s: mounted at %q from host %q, want %s both", name, mounts[name], hostPaths[name], path)
		}
	}
	if ds.Spec.Selector == nil || ds.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != ds.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Error("selector does not match the template's labels")
	}
}

// rbac.yaml grants the Kubernetes source list and watch on what its
// informers follow, and nothing else.
func TestRBACDecodes(t *testing.T) {
	raw, err := os.ReadFile("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(raw), "\n---\n")
	if len(docs) != 3 {
		t.Fatalf("%d documents, want ServiceAccount, ClusterRole, ClusterRoleBinding", len(docs))
	}
	var sa corev1.ServiceAccount
	var role rbacv1.ClusterRole
	var bind rbacv1.ClusterRoleBinding
	for i, v := range []any{&sa, &role, &bind} {
		if err := yaml.UnmarshalStrict([]byte(docs[i]), v); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	want := map[string]bool{"/services": true, "/pods": true, "/nodes": true, "discovery.k8s.io/endpointslices": true, "networking.k8s.io/networkpolicies": true}
	for _, r := range role.Rules {
		if !slices.Equal(r.Verbs, []string{"list", "watch"}) {
			t.Errorf("rule %v: verbs %v, want list and watch only", r.Resources, r.Verbs)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if !want[g+"/"+res] {
					t.Errorf("rule grants %s/%s, which the source does not read", g, res)
				}
				delete(want, g+"/"+res)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("role lacks %v", want)
	}
	if bind.RoleRef.Name != role.Name || len(bind.Subjects) != 1 || bind.Subjects[0].Name != sa.Name || bind.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("binding %+v does not bind the role to the service account", bind)
	}
	var ds appsv1.DaemonSet
	dsRaw, _ := os.ReadFile("daemonset.yaml")
	if err := yaml.Unmarshal(dsRaw, &ds); err != nil || ds.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet runs as %q (%v), want %s", ds.Spec.Template.Spec.ServiceAccountName, err, sa.Name)
	}
}

// The example config is one the supervisor accepts.
func TestExampleConfigValid(t *testing.T) {
	cfg, err := supervisor.LoadConfigFile("hotpath.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Config.Enabled() || cfg.NodeName == "" {
		t.Error("the example config does not show cluster mode")
	}
}

// `make install DESTDIR=... PREFIX=...` puts the binaries, the unit (with
// ExecStart under PREFIX) and the example config in place.
func TestMakeInstall(t *testing.T) {
	dest := t.TempDir()
	out, err := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/opt/hp").CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"opt/hp/bin/hotpath", "opt/hp/bin/hotpath-ct", "opt/hp/bin/hotpath-lb", "etc/hotpath/hotpath.json"} {
		if fi, err := os.Stat(filepath.Join(dest, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not installed: %v", f, err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(dest, "lib/systemd/system/hotpath.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/opt/hp/bin/hotpath ") || strings.Contains(string(unit), "@BINDIR@") {
		t.Errorf("installed unit's ExecStart does not name PREFIX/bin:\n%s", unit)
	}
}
