package migrate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// An invalidation for clean-up on a cluster without the guard's policy
// says so once, with how to guard it; a revocation (never guarded) and a
// dry run say nothing of it. This package's cluster never installs the
// guard.
func TestApplySaysWhenUnguarded(t *testing.T) {
	ns := cluster.CreateNamespace(t, "unguarded")
	cluster.CreateLegacySecret(t, ns, "report", "yearly-token", false)
	cluster.BackdateSecret(t, ns, "yearly-token", framework.DaysAgo(3*365))
	cluster.SetLastUsed(t, ns, "yearly-token", framework.DaysAgo(200))

	dry := run(t, "migrate", "-n", ns, "--apply", "--dry-run=client")
	if strings.Contains(dry.Stderr, "unguarded") {
		t.Errorf("a dry run warned of an unguarded invalidation:\n%s", dry.Stderr)
	}
	r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", filepath.Join(t.TempDir(), "backup"))
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if n := strings.Count(r.Stderr, "this invalidation is unguarded"); n != 1 || !strings.Contains(r.Stderr, "kubectl bound-token guard install") {
		t.Errorf("want one unguarded warning naming guard install, got %d:\n%s", n, r.Stderr)
	}
}
