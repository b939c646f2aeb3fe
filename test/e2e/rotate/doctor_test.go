package rotate

import (
	"context"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

// doctor judges the rollout as wait does: the stale "all nodes at latest"
// condition right after the operator raises the revision is not "done".
func TestDoctorJudgesTheRolloutLikeWait(t *testing.T) {
	op := openShift(t, func(o *kasoperator.Operator) { o.Stuck = true })
	ctx := context.Background()
	rollout := func(wantStatus string, wantIn ...string) {
		t.Helper()
		r := run(cluster.Kubeconfig, "doctor", "-o", "json")
		if c, ok := r.DoctorChecks(t)["openshift-rollout"]; ok {
			if c.Status != wantStatus {
				t.Fatalf("openshift-rollout is %s, want %s: %s | %s", c.Status, wantStatus, c.Message, c.Fix)
			}
			for _, s := range wantIn {
				if !strings.Contains(c.Message+" | "+c.Fix, s) {
					t.Fatalf("openshift-rollout lacks %q: %s | %s", s, c.Message, c.Fix)
				}
			}
			if wantStatus == "fail" && r.Code != 1 {
				t.Fatalf("a failed check, exit %d", r.Code)
			}
			return
		}
		t.Fatalf("no openshift-rollout check: %s", r.Stdout)
	}
	rollout("pass", "kube-apiserver rollout done: 3/3 nodes at revision 7")

	// The race: the revision is raised, the condition still speaks of 7.
	if err := op.Write(ctx, func(s *openshift.KubeAPIServerStatus) { s.LatestAvailableRevision = 8 }); err != nil {
		t.Fatal(err)
	}
	if c := kasStatus(t).Condition(openshift.CondNodeInstallerProgressing); c.Reason != openshift.ReasonAllNodesAtLatest {
		t.Fatalf("the test needs the stale condition, found %+v", c)
	}
	rollout("warn", "in progress: 0/3 nodes at revision 8", "kubectl bound-token wait")

	// master-0's installer starts and fails, one status write each.
	if err := op.Write(ctx, func(s *openshift.KubeAPIServerStatus) { op.StartInstall(s, 0) }); err != nil {
		t.Fatal(err)
	}
	if err := op.Write(ctx, func(s *openshift.KubeAPIServerStatus) { op.InstallerFailed(s, 0) }); err != nil {
		t.Fatal(err)
	}
	rollout("fail", "node master-0 failed revision 8 (InstallerFailed)", "--rollback")
}
