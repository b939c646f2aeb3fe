package rotate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

// The single-command forms of the release before rotate issuer and rotate
// hosted-cluster still change the cluster, for one release, and say on
// stderr (first line) which form replaces them.
func TestRotateDeprecatedFormsStillWork(t *testing.T) {
	notice := func(old, repl string) string {
		return "warning: 'kubectl bound-token " + old + "' is deprecated and will be removed in the next release; use 'kubectl bound-token " + repl + "'\n"
	}
	firstLine := func(t *testing.T, r framework.Result, want string) {
		t.Helper()
		if !strings.HasPrefix(r.Stderr, want) {
			t.Errorf("stderr does not start with %q:\n%s", want, r.Stderr)
		}
	}

	openShift(t, func(o *kasoperator.Operator) { o.Legacy = true })
	dir := t.TempDir()
	backup := filepath.Join(dir, "first.yaml")
	r := run(cluster.Kubeconfig, "rotate", "--issuer", "https://oidc.example.com/old-form", "--yes", "--backup", backup).
		Must(t, 0, "kube-apiserver at revision 8")
	firstLine(t, r, notice("rotate --issuer URL", "rotate issuer URL"))
	if got := currentIssuer(t); got != "https://oidc.example.com/old-form" {
		t.Fatalf("rotate --issuer: spec.serviceAccountIssuer = %q", got)
	}
	r = run(cluster.Kubeconfig, "rotate", "--rollback", "--from", backup, "--yes", "--backup", filepath.Join(dir, "second.yaml")).Must(t, 0)
	firstLine(t, r, notice("rotate --rollback --from FILE", "rotate issuer --rollback --from FILE"))
	if got := currentIssuer(t); got != "" {
		t.Fatalf("rotate --rollback: spec.serviceAccountIssuer = %q, want unset", got)
	}

	ns, old, d := hostedCluster(t, "clusters-old-form")
	r = run(cluster.Kubeconfig, "rotate", "--hosted-cluster", "prod", "--yes", "-n", ns, "--wait=false").Must(t, 0, "previous kid "+old.KeyID)
	firstLine(t, r, notice("rotate --hosted-cluster NAME", "rotate hosted-cluster NAME"))
	hc, err := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Get(context.Background(), "prod", metav1.GetOptions{})
	if err != nil || hypershift.SigningKeyName(hc) == "sa-key" {
		t.Fatalf("rotate --hosted-cluster left spec.serviceAccountSigningKey at %q (%v)", hypershift.SigningKeyName(hc), err)
	}
	if kid := strings.TrimSpace(r.Stdout); kid == "" || kid == old.KeyID {
		t.Fatalf("rotate --hosted-cluster printed kid %q", kid)
	}

	// A flag of the other subcommand is refused, as the old matrix did.
	run(cluster.Kubeconfig, "rotate", "--hosted-cluster", "prod", "--yes", "-n", ns, "--restart", "workloads").
		Must(t, 2, "--restart is not a flag of 'kubectl bound-token rotate hosted-cluster'")
}
