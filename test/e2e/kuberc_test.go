package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// execKubeconfig writes a kubeconfig with two contexts whose user gets
// the admin's client certificate from an exec credential plugin (a
// script that appends a line to its log each time it runs), and returns
// the kubeconfig, the plugin's path and its log.
func execKubeconfig(t *testing.T) (kubeconfig, plugin, runs string) {
	t.Helper()
	dir := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(cluster.Dir, "pki", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cred, err := json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1",
		"kind":       "ExecCredential",
		"status":     map[string]any{"clientCertificateData": read("admin.crt"), "clientKeyData": read("admin.key")},
	})
	if err != nil {
		t.Fatal(err)
	}
	runs = filepath.Join(dir, "runs")
	plugin = filepath.Join(dir, "cred-plugin")
	script := fmt.Sprintf("#!/bin/sh\necho ran >> %q\ncat <<'EOF'\n%s\nEOF\n", runs, cred)
	if err := os.WriteFile(plugin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: %q, certificate-authority: %q}
users:
- name: exec
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: %q, interactiveMode: Never}
contexts:
- {name: one, context: {cluster: local, user: exec, namespace: default}}
- {name: two, context: {cluster: local, user: exec, namespace: kube-system}}
current-context: one
`, cluster.Server, cluster.CAFile, plugin)
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, plugin, runs
}

func pluginRuns(t *testing.T, runs string) int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "ran\n")
}

// A user who forbids exec credential plugins in kubectl's kuberc
// (kubectl 1.35+) does not have them run by this plugin either: a single
// cluster (through the factory) and a fleet (each context's own client)
// refuse the plugin before running it; an allowlist naming it lets it run,
// and KUBERC=off ignores the file as kubectl does.
func TestKubercCredentialPluginPolicy(t *testing.T) {
	kubeconfig, plugin, runs := execKubeconfig(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deny := write("deny", "credentialPluginPolicy: DenyAll\n")
	allow := write("allow", fmt.Sprintf("credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- command: %q\n", plugin))
	other := write("other", "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- command: /usr/bin/some-other-plugin\n")
	bad := write("bad", "credentialPluginPolicy: Allowlist\n")

	audit := func(extra ...string) framework.Result {
		return framework.Run(strings.NewReader(""), kubeconfig, append([]string{"migrate", "-n", "default"}, extra...)...)
	}
	fleetAudit := func() framework.Result {
		return framework.Run(strings.NewReader(""), kubeconfig, "migrate", "--contexts", "one,two")
	}

	t.Run("DenyAll refuses the plugin before it runs", func(t *testing.T) {
		t.Setenv("KUBERC", deny)
		before := pluginRuns(t, runs)
		r := audit()
		if r.Code == 0 || !strings.Contains(r.Stderr, `not allowed: policy set to "DenyAll"`) {
			t.Fatalf("exit %d, want the policy's refusal\nstderr: %s", r.Code, r.Stderr)
		}
		f := fleetAudit()
		if f.Code == 0 || !strings.Contains(f.Stdout+f.Stderr, `not allowed: policy set to "DenyAll"`) {
			t.Fatalf("fleet: exit %d, want the policy's refusal\nstdout: %s\nstderr: %s", f.Code, f.Stdout, f.Stderr)
		}
		if n := pluginRuns(t, runs) - before; n != 0 {
			t.Errorf("the denied plugin ran %d times", n)
		}
	})
	t.Run("an allowlist without the plugin refuses it", func(t *testing.T) {
		t.Setenv("KUBERC", other)
		before := pluginRuns(t, runs)
		if r := audit(); r.Code == 0 || !strings.Contains(r.Stderr, "is not permitted by the credential plugin allowlist") {
			t.Fatalf("exit %d, want a refusal\nstderr: %s", r.Code, r.Stderr)
		}
		if n := pluginRuns(t, runs) - before; n != 0 {
			t.Errorf("the plugin ran %d times", n)
		}
	})
	t.Run("an allowlist naming the plugin lets it run", func(t *testing.T) {
		t.Setenv("KUBERC", allow)
		before := pluginRuns(t, runs)
		audit().MustCode(t, 0)
		fleetAudit().MustCode(t, 0)
		if pluginRuns(t, runs) == before {
			t.Error("the allowed plugin never ran")
		}
	})
	t.Run("--kuberc names the file as in kubectl", func(t *testing.T) {
		t.Setenv("KUBERC", "")
		r := audit("--kuberc", deny)
		if r.Code == 0 || !strings.Contains(r.Stderr, `policy set to "DenyAll"`) {
			t.Fatalf("exit %d, want the policy's refusal\nstderr: %s", r.Code, r.Stderr)
		}
	})
	t.Run("KUBERC=off ignores it", func(t *testing.T) {
		t.Setenv("KUBERC", "off")
		audit().MustCode(t, 0)
	})
	t.Run("a policy kubectl refuses is refused before anything runs", func(t *testing.T) {
		t.Setenv("KUBERC", bad)
		before := pluginRuns(t, runs)
		r := audit()
		r.MustCode(t, 2)
		r.StderrHas(t, "kuberc", "allowlist is unspecified")
		if n := pluginRuns(t, runs) - before; n != 0 {
			t.Errorf("the plugin ran %d times", n)
		}
	})
}
