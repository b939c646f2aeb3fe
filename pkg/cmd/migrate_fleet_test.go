package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/fleetapply"
)

// A fleet apply whose first cluster cannot be reached stops before its
// first wave changes anything: exit 1, the stop said, no folder written.
func TestFleetApplyUnreachableClusterStopsTheRun(t *testing.T) {
	path := unreachableFleet(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	out, errOut, code := run(t, cmdRun{}, "", "--kubeconfig", path, "migrate", "--all-contexts", "--apply", "--yes", "--backup-dir", dir, "--cluster-wave-watch", "1s")
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{"context east (", "cannot be planned", "cluster wave 1: east unreachable; the later waves were not started"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "west") || !strings.Contains(out, fleetapply.NotRun) {
		t.Errorf("west is not reported as not run:\n%s", out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("a run that changed nothing wrote %s", dir)
	}
}

// restore --from a fleet folder: the selection of its clusters, and the
// flags that cannot go with one.
func TestRestoreFleetFolder(t *testing.T) {
	path := unreachableFleet(t)
	dir := t.TempDir()
	ix, _ := fleetapply.OpenIndex(dir, "invalidate")
	for _, n := range []string{"east", "west"} {
		if _, err := ix.Add("uid-"+n, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--contexts", "nope"}, "context nope is not in the fleet folder's index"},
		{[]string{"--only", "ns/x"}, "--only names Secrets of one cluster"},
		{[]string{"-o", "name"}, `--output "name" is not supported with a fleet folder`},
		{nil, "error: context east ("},
		{[]string{"--contexts", "west"}, "error: context west ("},
	} {
		_, errOut, code := run(t, cmdRun{}, "", append([]string{"--kubeconfig", path, "restore", "--from", dir}, c.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
		if c.args != nil && c.args[0] == "--contexts" && c.args[1] == "west" && strings.Contains(errOut, "context east") {
			t.Errorf("--contexts west reached east too: %s", errOut)
		}
	}
	plain := t.TempDir()
	if _, errOut, code := run(t, cmdRun{}, "", "--kubeconfig", path, "restore", "--from", plain, "--contexts", "east"); code != ExitUsage || !strings.Contains(errOut, "--contexts needs a fleet folder") {
		t.Errorf("--contexts with a plain folder: exit %d, %s", code, errOut)
	}
}
