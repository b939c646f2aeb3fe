package openshift

import (
	"strings"
	"testing"
)

func nodes(cur ...int32) []NodeStatus {
	var out []NodeStatus
	for i, c := range cur {
		out = append(out, NodeStatus{NodeName: string(rune('a'+i)) + "-node", CurrentRevision: c, TargetRevision: c})
	}
	return out
}

func done(rev int32, msg string) Condition {
	return Condition{Type: CondNodeInstallerProgressing, Status: "False", Reason: ReasonAllNodesAtLatest, Message: msg}
}

func TestEvaluateStaleConditionIsNotDone(t *testing.T) {
	// Just after the patch: the condition still says done, about revision 11.
	st := &KubeAPIServerStatus{LatestAvailableRevision: 11, NodeStatuses: nodes(11, 11, 11),
		Conditions: []Condition{done(11, "3 nodes are at revision 11")}}
	if p := Evaluate(st, 11); p.Done {
		t.Fatal("stale AllNodesAtLatestRevision for the old revision counted as done")
	}
	if p := Evaluate(st, NoRevision); !p.Done {
		t.Fatal("without --since-revision a finished rollout is done")
	}
}

func TestEvaluateNeedsEveryNodeAndTheCondition(t *testing.T) {
	st := &KubeAPIServerStatus{LatestAvailableRevision: 12, NodeStatuses: nodes(12, 11, 12),
		Conditions: []Condition{{Type: CondNodeInstallerProgressing, Status: "True", Message: "1 node is at revision 11; 2 nodes are at revision 12"}}}
	st.NodeStatuses[1].TargetRevision = 12
	p := Evaluate(st, 11)
	if p.Done || p.Summary() != "2/3 nodes at revision 12 (b-node installing)" {
		t.Fatalf("done=%v summary %q", p.Done, p.Summary())
	}
	// Condition done but a node lags (or the message names another revision): not done.
	st.Conditions = []Condition{done(12, "3 nodes are at revision 12")}
	if Evaluate(st, 11).Done {
		t.Fatal("done while b-node is at 11")
	}
	st.NodeStatuses[1].CurrentRevision = 12
	st.Conditions = []Condition{done(12, "1 nodes are at revision 11; 2 nodes are at revision 12")}
	if Evaluate(st, 11).Done {
		t.Fatal("done while the message names revision 11")
	}
	st.Conditions = []Condition{done(12, "3 nodes are at revision 12")}
	if !Evaluate(st, 11).Done {
		t.Fatal("not done with every node at 12 and the condition done")
	}
}

func TestEvaluateFailure(t *testing.T) {
	st := &KubeAPIServerStatus{LatestAvailableRevision: 12, NodeStatuses: nodes(12, 11, 11),
		Conditions: []Condition{
			{Type: CondNodeInstallerProgressing, Status: "True", Message: "2 nodes are at revision 11; 1 node is at revision 12"},
			{Type: CondNodeInstallerDegraded, Status: "True", Reason: ReasonInstallerPodFailed, Message: "1 nodes are failing on revision 12:\ninstaller: disk full"},
		}}
	st.NodeStatuses[1].LastFailedRevision = 12
	st.NodeStatuses[1].LastFailedReason = "InstallerFailed"
	st.NodeStatuses[1].LastFailedRevisionErrors = []string{"installer: disk full"}
	p := Evaluate(st, 11)
	if !p.Failed || len(p.Failures) != 2 || !strings.Contains(p.Failures[1], "node b-node failed revision 12 (InstallerFailed): installer: disk full") {
		t.Fatalf("%+v", p.Failures)
	}
	// A degraded condition from before the change does not fail a wait that
	// has not seen its new revision yet.
	if Evaluate(st, 12).Failed {
		t.Fatal("stale degraded condition failed the wait")
	}
	// A new revision raised over the failed one (a rollback): until the
	// operator retargets the failed node, the condition names revision 12.
	st.LatestAvailableRevision = 13
	if p := Evaluate(st, 12); p.Failed {
		t.Fatalf("a failure of revision 12 failed the rollout to 13: %+v", p.Failures)
	}
	st.Conditions[1].Message = "1 nodes are failing on revision 12:\ninstaller: disk full; 1 nodes are failing on revision 13:\ninstaller: disk full"
	if !Evaluate(st, 12).Failed {
		t.Fatal("a failure of revision 13 did not fail the rollout to 13")
	}
	st.Conditions[1].Message = "installer pods keep failing"
	if !Evaluate(st, 12).Failed {
		t.Fatal("a degraded condition naming no revision did not fail the rollout")
	}
}

func TestValidateIssuer(t *testing.T) {
	for _, ok := range []string{"https://oidc.example.com", "https://oidc.example.com/cluster-a"} {
		if err := ValidateIssuer(ok, false); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"oidc.example.com", "https://x.example.com/?a=b", "https://x.example.com/#f", "ftp://x", "https://u@x.example.com", "http://x.example.com"} {
		if err := ValidateIssuer(bad, false); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := ValidateIssuer("http://x.example.com", true); err != nil {
		t.Error(err)
	}
}
