package rotate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// Without --yes, rotate asks on a terminal and changes nothing unless the
// answer is y or yes; without a terminal it refuses (TestRotateValidatesTheIssuer
// and the hygiene test run it without one).
func TestRotateAsksBeforeChanging(t *testing.T) {
	op := openShift(t, nil)
	for _, c := range []struct {
		typed   string
		code    int
		changed bool
	}{
		{"n\n", 1, false},
		{"\n", 1, false},
		{"maybe\n", 1, false},
		{"YES\n", 0, true},
	} {
		before := currentIssuer(t)
		master, tty := framework.OpenPTY(t)
		if _, err := master.WriteString(c.typed); err != nil {
			t.Fatal(err)
		}
		backup := filepath.Join(t.TempDir(), "auth.yaml")
		r := runWithInput(tty, cluster.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/asked", "--backup", backup)
		if r.Code != c.code || !strings.Contains(r.Stderr, "Proceed? [y/N] ") {
			t.Fatalf("typed %q: exit %d (want %d)\nstderr: %s", c.typed, r.Code, c.code, r.Stderr)
		}
		after := currentIssuer(t)
		_, statErr := os.Stat(backup)
		switch {
		case c.changed && (after != "https://oidc.example.com/asked" || statErr != nil):
			t.Fatalf("typed %q: issuer %q, backup %v", c.typed, after, statErr)
		case !c.changed && (after != before || statErr == nil || !strings.Contains(r.Stderr, "not confirmed: nothing changed")):
			t.Fatalf("typed %q: issuer %q -> %q, backup written: %v\nstderr: %s", c.typed, before, after, statErr == nil, r.Stderr)
		}
	}
	if n := op.Rollouts(); n != 1 {
		t.Fatalf("%d rollouts, want 1 (only after YES)", n)
	}
}

// rotate hosted-cluster asks too: on a terminal it changes nothing unless
// the answer is yes; without a terminal and without --yes it refuses
// before anything is written.
func TestRotateHostedClusterAsksBeforeChanging(t *testing.T) {
	ns, _, d := hostedCluster(t, "clusters-asked")
	ctx := context.Background()
	signingKey := func() string {
		hc, err := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Get(ctx, "prod", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return hypershift.SigningKeyName(hc)
	}
	secrets := func() int {
		l, err := cluster.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	before, n := signingKey(), secrets()
	runWithInput(strings.NewReader("y\n"), cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "-n", ns, "--wait=false").
		Must(t, 2, "add --yes to confirm (stdin is not a terminal to ask on); nothing changed")
	for _, typed := range []string{"n\n", "\n"} {
		master, tty := framework.OpenPTY(t)
		if _, err := master.WriteString(typed); err != nil {
			t.Fatal(err)
		}
		runWithInput(tty, cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "-n", ns, "--wait=false").
			Must(t, 1, "Proceed? [y/N] ", "not confirmed: nothing changed")
	}
	if signingKey() != before || secrets() != n {
		t.Fatalf("a refused rotation changed the cluster: signing key %q -> %q, %d -> %d Secrets", before, signingKey(), n, secrets())
	}
	master, tty := framework.OpenPTY(t)
	if _, err := master.WriteString("yes\n"); err != nil {
		t.Fatal(err)
	}
	runWithInput(tty, cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "-n", ns, "--wait=false").
		Must(t, 0, "hostedcluster "+ns+"/prod: signing key from kid ", "Proceed? [y/N] ")
	if signingKey() == before || secrets() != n+1 {
		t.Fatalf("after yes: signing key %q (was %q), %d Secrets (were %d)", signingKey(), before, secrets(), n)
	}
}
