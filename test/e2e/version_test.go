package e2e

import (
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// version shows the cluster's release next to the plugin's, as kubectl
// version does: the local control plane's, v1.37.2 by default (v1.34.4 on
// the oldest-release pass).
func TestVersionShowsTheCluster(t *testing.T) {
	r := run(t, "", "version").MustCode(t, 0)
	want := "Server: Kubernetes " + cluster.Version + "\n"
	if !strings.HasPrefix(cluster.Version, "v"+framework.KubeVersion()+".") || !strings.Contains(r.Stdout, want) {
		t.Fatalf("version printed %q, want a line %q (KUBE_VERSION %s)", r.Stdout, want, framework.KubeVersion())
	}
	if got := run(t, "", "version", "-o", "jsonpath={.serverVersion.gitVersion}").MustCode(t, 0).Stdout; got != cluster.Version {
		t.Fatalf("-o jsonpath serverVersion.gitVersion = %q, want %q", got, cluster.Version)
	}
}
