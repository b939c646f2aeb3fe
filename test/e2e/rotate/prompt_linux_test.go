package rotate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		if r.code != c.code || !strings.Contains(r.stderr, "Proceed? [y/N] ") {
			t.Fatalf("typed %q: exit %d (want %d)\nstderr: %s", c.typed, r.code, c.code, r.stderr)
		}
		after := currentIssuer(t)
		_, statErr := os.Stat(backup)
		switch {
		case c.changed && (after != "https://oidc.example.com/asked" || statErr != nil):
			t.Fatalf("typed %q: issuer %q, backup %v", c.typed, after, statErr)
		case !c.changed && (after != before || statErr == nil || !strings.Contains(r.stderr, "not confirmed: nothing changed")):
			t.Fatalf("typed %q: issuer %q -> %q, backup written: %v\nstderr: %s", c.typed, before, after, statErr == nil, r.stderr)
		}
	}
	if n := op.Rollouts(); n != 1 {
		t.Fatalf("%d rollouts, want 1 (only after YES)", n)
	}
}
