package openshift

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
)

// NoRevision means "no --since-revision": any finished rollout counts.
const NoRevision int32 = -1

// Progress is the verdict on one KubeAPIServer status.
type Progress struct {
	// Revision is latestAvailableRevision.
	Revision int32 `json:"revision"`
	// SinceRevision is the revision the rollout must go beyond (-1: none).
	SinceRevision int32 `json:"sinceRevision"`
	Nodes         int   `json:"nodes"`
	AtRevision    int   `json:"nodesAtRevision"`
	// Installing lists nodes targeting Revision but not on it yet.
	Installing []string `json:"installing,omitempty"`
	// Done: the condition says AllNodesAtLatestRevision, every node's
	// currentRevision is Revision, and Revision > SinceRevision.
	Done bool `json:"done"`
	// Failed: NodeInstallerDegraded is True for this rollout.
	Failed bool `json:"failed"`
	// Failures are the degraded message and each node's last failure on
	// Revision, for the user as they are.
	Failures []string `json:"failures,omitempty"`
	// Condition is NodeInstallerProgressing as read (message parsed below).
	Condition *Condition      `json:"nodeInstallerProgressing,omitempty"`
	Counts    []RevisionCount `json:"-"`
	// NodeStatuses is the per-node state, for -o json.
	NodeStatuses []NodeStatus `json:"nodeStatuses"`
}

// Evaluate judges a status against since (NoRevision for none). It never
// trusts the condition alone: right after an issuer change the condition can
// still say AllNodesAtLatestRevision about the OLD revision, before the
// operator raises latestAvailableRevision.
func Evaluate(st *KubeAPIServerStatus, since int32) Progress {
	p := Progress{Revision: st.LatestAvailableRevision, SinceRevision: since, Nodes: len(st.NodeStatuses), NodeStatuses: st.NodeStatuses}
	for _, n := range st.NodeStatuses {
		if n.CurrentRevision == st.LatestAvailableRevision {
			p.AtRevision++
		} else if n.TargetRevision == st.LatestAvailableRevision {
			p.Installing = append(p.Installing, n.NodeName)
		}
	}
	sort.Strings(p.Installing)
	newRevision := since == NoRevision || st.LatestAvailableRevision > since
	cond := st.Condition(CondNodeInstallerProgressing)
	messageAgrees := true
	if cond != nil {
		p.Condition = cond
		if cs, err := ParseNodeInstallerMessage(cond.Message); err == nil {
			p.Counts = cs
			// A message naming any other revision is stale or mid-rollout.
			for _, c := range cs {
				if c.Nodes > 0 && c.Revision != st.LatestAvailableRevision {
					messageAgrees = false
				}
			}
		}
	}
	p.Done = newRevision && cond != nil && cond.Status == "False" && cond.Reason == ReasonAllNodesAtLatest &&
		messageAgrees && p.Nodes > 0 && p.AtRevision == p.Nodes

	if newRevision && !p.Done {
		if d := st.Condition(CondNodeInstallerDegraded); d != nil && d.Status == "True" && !degradedOnlyBefore(d.Message, st.LatestAvailableRevision) {
			p.Failed = true
			p.Failures = append(p.Failures, fmt.Sprintf("%s: %s: %s", CondNodeInstallerDegraded, d.Reason, text.OneLine(d.Message, 0)))
		}
		for _, n := range st.NodeStatuses {
			if n.LastFailedRevision == st.LatestAvailableRevision && n.LastFailedRevision > 0 && n.CurrentRevision != st.LatestAvailableRevision {
				msg := fmt.Sprintf("node %s failed revision %d", n.NodeName, n.LastFailedRevision)
				if n.LastFailedReason != "" {
					msg += " (" + n.LastFailedReason + ")"
				}
				if len(n.LastFailedRevisionErrors) > 0 {
					msg += ": " + text.OneLine(strings.Join(n.LastFailedRevisionErrors, "; "), 0)
				}
				p.Failures = append(p.Failures, msg)
			}
		}
	}
	return p
}

// degradedOnlyBefore reports whether a NodeInstallerDegraded message names
// only revisions older than latest: a failure left over from an earlier
// rollout. library-go writes one "N nodes are failing on revision R:\n..."
// per failing revision (pkg/operator/staticpod/controller/installer/
// installer_controller.go, prepareNodeInstallerConditionApplyConfiguration),
// counting a node as failing while its lastFailedRevision equals its
// targetRevision. When a new revision is raised over a failed one, the
// condition speaks of the old revision until the installer controller moves
// that node's targetRevision to the new one (newNodeStateForInstallInProgress,
// "new revision pending"). A message naming no revision counts as a failure.
func degradedOnlyBefore(msg string, latest int32) bool {
	const marker = "failing on revision "
	found := false
	for rest := msg; ; {
		i := strings.Index(rest, marker)
		if i < 0 {
			return found
		}
		rest = rest[i+len(marker):]
		var r int32
		if _, err := fmt.Sscanf(rest, "%d", &r); err != nil || r >= latest {
			return false
		}
		found = true
	}
}

// Summary is the one-line progress shown while waiting, e.g.
// "2/3 nodes at revision 12 (node-b installing)".
func (p Progress) Summary() string {
	if p.SinceRevision != NoRevision && p.Revision <= p.SinceRevision {
		return fmt.Sprintf("waiting for the operator to start a revision after %d (latest is %d)", p.SinceRevision, p.Revision)
	}
	if p.Nodes == 0 {
		if p.Condition != nil && p.Condition.Message != "" {
			return p.Condition.Message
		}
		return fmt.Sprintf("revision %d: no node status yet", p.Revision)
	}
	s := fmt.Sprintf("%d/%d nodes at revision %d", p.AtRevision, p.Nodes, p.Revision)
	if len(p.Installing) > 0 {
		s += " (" + strings.Join(p.Installing, ", ") + " installing)"
	}
	if p.AtRevision == p.Nodes && !p.Done {
		s += " (waiting for the operator to report AllNodesAtLatestRevision)"
	}
	return s
}
