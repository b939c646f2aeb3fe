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

	audit := func(extra ...string) result {
		var r result
		r.stdout, r.stderr, r.code = framework.RunPlugin(strings.NewReader(""), kubeconfig, append([]string{"migrate", "-n", "default"}, extra...)...)
		return r
	}
	fleetAudit := func() result {
		var r result
		r.stdout, r.stderr, r.code = framework.RunPlugin(strings.NewReader(""), kubeconfig, "migrate", "--contexts", "one,two")
		return r
	}

	t.Run("DenyAll refuses the plugin before it runs", func(t *testing.T) {
		t.Setenv("KUBERC", deny)
		before := pluginRuns(t, runs)
		r := audit()
		if r.code == 0 || !strings.Contains(r.stderr, `not allowed: policy set to "DenyAll"`) {
			t.Fatalf("exit %d, want the policy's refusal\nstderr: %s", r.code, r.stderr)
		}
		f := fleetAudit()
		if f.code == 0 || !strings.Contains(f.stdout+f.stderr, `not allowed: policy set to "DenyAll"`) {
			t.Fatalf("fleet: exit %d, want the policy's refusal\nstdout: %s\nstderr: %s", f.code, f.stdout, f.stderr)
		}
		if n := pluginRuns(t, runs) - before; n != 0 {
			t.Errorf("the denied plugin ran %d times", n)
		}
	})
	t.Run("an allowlist without the plugin refuses it", func(t *testing.T) {
		t.Setenv("KUBERC", other)
		before := pluginRuns(t, runs)
		if r := audit(); r.code == 0 || !strings.Contains(r.stderr, "is not permitted by the credential plugin allowlist") {
			t.Fatalf("exit %d, want a refusal\nstderr: %s", r.code, r.stderr)
		}
		if n := pluginRuns(t, runs) - before; n != 0 {
			t.Errorf("the plugin ran %d times", n)
		}
	})
	t.Run("an allowlist naming the plugin lets it run", func(t *testing.T) {
		t.Setenv("KUBERC", allow)
		before := pluginRuns(t, runs)
		audit().mustCode(t, 0)
		fleetAudit().mustCode(t, 0)
		if pluginRuns(t, runs) == before {
			t.Error("the allowed plugin never ran")
		}
	})
	t.Run("--kuberc names the file as in kubectl", func(t *testing.T) {
		t.Setenv("KUBERC", "")
		r := audit("--kuberc", deny)
		if r.code == 0 || !strings.Contains(r.stderr, `policy set to "DenyAll"`) {
			t.Fatalf("exit %d, want the policy's refusal\nstderr: %s", r.code, r.stderr)
		}
	})
	t.Run("KUBERC=off ignores it", func(t *testing.T) {
		t.Setenv("KUBERC", "off")
		audit().mustCode(t, 0)
	})
	t.Run("a policy kubectl refuses is refused before anything runs", func(t *testing.T) {
		t.Setenv("KUBERC", bad)
		before := pluginRuns(t, runs)
		r := audit()
		r.mustCode(t, 2)
		r.stderrHas(t, "kuberc", "allowlist is unspecified")
		if n := pluginRuns(t, runs) - before; n != 0 {
			t.Errorf("the plugin ran %d times", n)
		}
	})
}
