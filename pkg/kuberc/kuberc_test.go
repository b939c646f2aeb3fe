package kuberc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func writeKuberc(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kuberc")
	if err := os.WriteFile(p, []byte("apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicy(t *testing.T) {
	deny := writeKuberc(t, "credentialPluginPolicy: DenyAll\n")
	allow := writeKuberc(t, "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- command: gke-gcloud-auth-plugin\n")
	emptyAllow := writeKuberc(t, "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: []\n")
	aliasesOnly := writeKuberc(t, "aliases:\n- name: getn\n  command: get\n")
	// The default file (~/.kube/kuberc) is fixed when the upstream
	// package loads (RecommendedKubeRCFile), so it is not tested here.
	home := t.TempDir()
	t.Setenv("KUBECTL_KUBERC", "")

	for _, tc := range []struct {
		name, path, env string
		want            clientcmdapi.PluginPolicy
		err             string
	}{
		{name: "no file anywhere: kubectl's default, every plugin allowed"},
		{name: "explicit path", path: deny, want: clientcmdapi.PluginPolicy{PolicyType: clientcmdapi.PluginPolicyDenyAll}},
		{name: "KUBERC", env: deny, want: clientcmdapi.PluginPolicy{PolicyType: clientcmdapi.PluginPolicyDenyAll}},
		{name: "allowlist", env: allow, want: clientcmdapi.PluginPolicy{PolicyType: clientcmdapi.PluginPolicyAllowlist,
			Allowlist: []clientcmdapi.AllowlistEntry{{Command: "gke-gcloud-auth-plugin"}}}},
		{name: "KUBERC=off", env: "off"},
		{name: "KUBERC=off with a path, as kubectl refuses", env: "off", path: deny, err: "mutually exclusive"},
		{name: "an empty allowlist, as client-go refuses", path: emptyAllow, err: "allowlist is empty"},
		{name: "a missing explicit file", path: filepath.Join(home, "nope"), err: "no such file"},
		{name: "preferences without a policy", path: aliasesOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBERC", tc.env)
			got, err := Policy(tc.path, &bytes.Buffer{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.PolicyType != tc.want.PolicyType || len(got.Allowlist) != len(tc.want.Allowlist) {
				t.Fatalf("policy = %+v, want %+v", got, tc.want)
			}
			for i := range got.Allowlist {
				if got.Allowlist[i] != tc.want.Allowlist[i] {
					t.Fatalf("policy = %+v, want %+v", got, tc.want)
				}
			}
		})
	}

	t.Run("KUBECTL_KUBERC=false", func(t *testing.T) {
		t.Setenv("KUBERC", deny)
		// kubectl skips kuberc when its feature gate is off
		// (k8s.io/kubectl/pkg/cmd/cmd.go, cmdutil.KubeRC.IsDisabled).
		t.Setenv("KUBECTL_KUBERC", "false")
		if got, err := Policy("", &bytes.Buffer{}); err != nil || got.PolicyType != "" {
			t.Fatalf("KUBECTL_KUBERC=false: policy = %+v, %v; want none", got, err)
		}
	})
}

func TestApplySetsThePolicyOnExecConfigsOnly(t *testing.T) {
	p := clientcmdapi.PluginPolicy{PolicyType: clientcmdapi.PluginPolicyDenyAll}
	withExec := &rest.Config{ExecProvider: &clientcmdapi.ExecConfig{Command: "x"}}
	if got := Apply(withExec, p); got != withExec || got.ExecProvider.PluginPolicy.PolicyType != clientcmdapi.PluginPolicyDenyAll {
		t.Fatalf("exec config: policy %+v", got.ExecProvider.PluginPolicy)
	}
	plain := &rest.Config{BearerToken: "t"}
	if got := Apply(plain, p); got != plain || got.ExecProvider != nil {
		t.Fatal("a config without an exec plugin changed")
	}
	if Apply(nil, p) != nil {
		t.Fatal("nil config")
	}
}
