package switche2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// records counts the index records per op and object.
func records(t *testing.T, dir string) (backups, switched map[string]int) {
	t.Helper()
	backups, switched = map[string]int{}, map[string]int{}
	data, err := os.ReadFile(filepath.Join(dir, backup.IndexFile))
	if os.IsNotExist(err) {
		return backups, switched // not yet created
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r backup.Record
		if err := json.Unmarshal(line, &r); err != nil {
			// The killed run may leave a last line cut short.
			continue
		}
		switch {
		case r.Op == backup.OpBackup:
			backups[r.Name]++
		case r.Op == backup.OpDone && r.Result == switcher.ResultSwitched:
			switched[r.Name]++
		}
	}
	return backups, switched
}

// SIGKILL in the middle of a switch of 50 Deployments, then the same
// command again: every Deployment is switched exactly once (one template
// change: generation 2; one switch record), none is left.
func TestKilledSwitchFinishesOnce(t *testing.T) {
	const n = 50
	ns := cluster.CreateNamespace(t, "kill")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	for i := 0; i < n; i++ {
		// No replicas: the test is about the writes, not the pods.
		createDeployment(t, ns, fmt.Sprintf("w-%02d", i), 0, podSpec("app", "app-token", nil, nil), nil)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	args := []string{"switch", "-n", ns, "--apply", "--yes", "--wait=false", "--backup-dir", dir, "--concurrency", "2", "--qps", "40", "--burst", "1"}

	killed, stderr := cluster.KillPluginWhen(t, func() bool {
		// The header, 50 backups, then the first switch records.
		_, sw := records(t, dir)
		return len(sw) >= 10
	}, args...)
	if !killed {
		t.Fatalf("the run ended before it could be killed mid-way: %s", stderr)
	}
	backups, before := records(t, dir)
	if len(before) >= n {
		t.Fatalf("killed too late: %d of %d already recorded", len(before), n)
	}
	t.Logf("killed after %d of %d switch records (%d backups)", len(before), n, len(backups))

	r := run(t, append(args, "-o", "json")...).MustCode(t, 0)
	// The rerun reports what was left, and only that.
	got := framework.WorkloadOutcomes(t, r.Stdout)
	if len(got) != n-len(before) {
		t.Errorf("the rerun reported %d workloads, want the %d left", len(got), n-len(before))
	}
	for k, o := range got {
		if o.Result != switcher.OutSwitched || before[o.Name] > 0 {
			t.Errorf("%s: %+v (recorded before the kill: %v)", k, o, before[o.Name] > 0)
		}
	}
	backups, after := records(t, dir)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("w-%02d", i)
		if after[name] != 1 {
			t.Errorf("%s: %d switch records, want 1", name, after[name])
		}
		if backups[name] != 1 {
			t.Errorf("%s: %d backups, want 1", name, backups[name])
		}
		d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation != 2 {
			t.Errorf("%s: generation %d, want 2 (created, switched once)", name, d.Generation)
		}
		if d.Spec.Template.Spec.Volumes[0].Projected == nil {
			t.Errorf("%s is not switched", name)
		}
	}
	if t.Failed() {
		t.Logf("rerun stderr:\n%s", r.Stderr)
	}
}
