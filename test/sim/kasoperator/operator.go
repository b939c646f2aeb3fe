// Package kasoperator simulates OpenShift's cluster-kube-apiserver-operator
// on a plain local control plane that has the real OpenShift CRDs
// installed: the e2e suite (test/e2e/rotate) and the demo
// (hack/openshift-sim, run by hack/demo.sh) use this one simulator, so the
// demo shows what the tests check.
package kasoperator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
)

// Operator simulates cluster-kube-apiserver-operator's reaction to a change
// of spec.serviceAccountIssuer, writing the status the real one writes:
//   - nothing for RaiseDelay: NodeInstallerProgressing keeps saying
//     AllNodesAtLatestRevision about the OLD revision (the race);
//   - then latestAvailableRevision+1, the old issuer listed in
//     status.serviceAccountIssuers with an expiry, Progressing True with an
//     empty reason and "N nodes are at revision R; 0 nodes have achieved new
//     revision R+1";
//   - nodes move one at a time: targetRevision set on one node, then that
//     node's currentRevision raised and its targetRevision cleared (0)
//     before the next node starts; the message in the current or the legacy
//     ("1 nodes are") grammar;
//   - optionally FailNode's installer fails: lastFailedRevision,
//     lastFailedReason, lastFailedRevisionErrors and NodeInstallerDegraded
//     InstallerPodFailed; the rollout stops there;
//   - else Progressing False/AllNodesAtLatestRevision.
//
// Its status writes go through the real KubeAPIServer CRD (openshift/api,
// see modcache.OpenShiftAPIVersion), whose CEL rules the real operator's
// writes satisfy and so must these: a nodeStatuses entry is created without
// currentRevision and targetRevision, currentRevision and
// latestAvailableRevision never go down, and at most one node has a
// non-zero targetRevision. Rejected lists the writes the apiserver refused;
// the e2e suite fails a test on any.
type Operator struct {
	dyn        dynamic.Interface
	Nodes      []string
	RaiseDelay time.Duration
	StepDelay  time.Duration
	Legacy     bool
	FailNode   string
	// Stuck: never react (for the timeout test).
	Stuck    bool
	TrustFor time.Duration

	// running ends when Run's goroutine does.
	running   sync.WaitGroup
	mu        sync.Mutex
	rollouts  int
	lastWrite time.Time
	// rejected are the status writes the apiserver refused (the real
	// CRD's schema and CEL rules): the real operator's writes pass them.
	rejected []error
}

// New returns a simulator of a three-node control plane with the delays the
// e2e suite's tests assume unless they set their own.
func New(dyn dynamic.Interface) *Operator {
	return &Operator{dyn: dyn, Nodes: []string{"master-0", "master-1", "master-2"}, RaiseDelay: 700 * time.Millisecond, StepDelay: 200 * time.Millisecond, TrustFor: 24 * time.Hour}
}

// KAS is kubeapiservers.operator.openshift.io, the resource the simulator writes.
func (op *Operator) KAS() dynamic.ResourceInterface {
	return op.dyn.Resource(openshift.KubeAPIServerGVR)
}
func (op *Operator) auth() dynamic.ResourceInterface {
	return op.dyn.Resource(openshift.AuthenticationGVR)
}

// Reset puts both objects in a settled state: issuer, every node at
// revision, the given trusted issuers (active one first). Revisions never go
// down in the real CRD, so the KubeAPIServer object of an earlier test is
// deleted and a new one is brought to revision the way the operator brings
// up a new cluster (bootstrap below).
func (op *Operator) Reset(ctx context.Context, issuer string, revision int32, trusted []openshift.ServiceAccountIssuer) error {
	a, err := op.auth().Get(ctx, openshift.ClusterName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "config.openshift.io/v1", "kind": "Authentication", "metadata": map[string]any{"name": "cluster"}, "spec": map[string]any{}}}
		a, err = op.auth().Create(ctx, a, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	if issuer == "" {
		unstructured.RemoveNestedField(a.Object, "spec", "serviceAccountIssuer")
	} else {
		_ = unstructured.SetNestedField(a.Object, issuer, "spec", "serviceAccountIssuer")
	}
	if _, err := op.auth().Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		return err
	}
	if err := op.KAS().Delete(ctx, openshift.ClusterName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	k := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "operator.openshift.io/v1", "kind": "KubeAPIServer", "metadata": map[string]any{"name": "cluster"}, "spec": map[string]any{"managementState": "Managed"}}}
	// No finalizers: the object is gone when Delete returns, but retry the
	// create in case the removal is still being committed.
	if err := retry.OnError(retry.DefaultBackoff, apierrors.IsAlreadyExists, func() error {
		_, err := op.KAS().Create(ctx, k, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if trusted == nil {
		trusted = []openshift.ServiceAccountIssuer{{Name: openshift.EffectiveIssuer(issuer)}}
	}
	return op.bootstrap(ctx, revision, trusted)
}

// bootstrap brings a new KubeAPIServer object to revision on every node
// with the writes the operator's controllers make on a new cluster:
//   - one write stands for the first syncs of the revision controller
//     (latestAvailableRevision; library-go
//     pkg/operator/revisioncontroller/revision_controller.go,
//     RevisionController.createRevisionIfNeeded), the issuer controller
//     (serviceAccountIssuers) and the node controller, which adds an entry
//     holding only the nodeName for each master node it has not seen
//     (library-go pkg/operator/staticpod/controller/node/node_controller.go,
//     NodeController.sync, "add entries for new nodes");
//   - then each node is installed in turn (StartInstall, Installed).
func (op *Operator) bootstrap(ctx context.Context, revision int32, trusted []openshift.ServiceAccountIssuer) error {
	if err := op.Write(ctx, func(st *openshift.KubeAPIServerStatus) {
		*st = openshift.KubeAPIServerStatus{LatestAvailableRevision: revision, ServiceAccountIssuers: trusted}
		for _, n := range op.Nodes {
			st.NodeStatuses = append(st.NodeStatuses, openshift.NodeStatus{NodeName: n})
		}
		op.SetConditions(st)
	}); err != nil {
		return err
	}
	for i := range op.Nodes {
		if err := op.Write(ctx, func(st *openshift.KubeAPIServerStatus) { op.StartInstall(st, i) }); err != nil {
			return err
		}
		if err := op.Write(ctx, func(st *openshift.KubeAPIServerStatus) { op.Installed(st, i) }); err != nil {
			return err
		}
	}
	return nil
}

// The installer controller's steps (library-go
// pkg/operator/staticpod/controller/installer/installer_controller.go). It
// changes one node per sync and writes that change before it looks at the
// next node (manageInstallationPods: "we want to write it out to the API
// before we commence work on the next node"), and it starts a node only
// when no node has a targetRevision (nodeToStartRevisionWith: "node %s is
// progressing towards %d"). Each step below is one status write.

// StartInstall starts node i's installer for the latest revision:
// manageInstallationPods sets TargetRevision = revisionToStart
// (getRevisionToStart: LatestAvailableRevision when the node is not at it);
// a node whose install of an older revision is pending or failed is moved
// to the latest the same way (newNodeStateForInstallInProgress, "new
// revision pending": TargetRevision = latestRevisionAvailable).
func (op *Operator) StartInstall(st *openshift.KubeAPIServerStatus, i int) {
	st.NodeStatuses[i].TargetRevision = st.LatestAvailableRevision
	op.SetConditions(st)
}

// firstNode is the node a rollout starts with: the one with a
// targetRevision (an install in progress or failed), else the first
// (nodeToStartRevisionWith: "node %s is progressing towards %d"; with
// every node equal, "no worse than any other node, but comes first"). The
// others follow in list order from there (manageInstallationPods:
// "(startNode + l) % len(operatorStatus.NodeStatuses)").
func firstNode(st *openshift.KubeAPIServerStatus) int {
	for i, n := range st.NodeStatuses {
		if n.TargetRevision != 0 {
			return i
		}
	}
	return 0
}

// Installed records node i's static pod running its target revision:
// newNodeStateForInstallInProgress, case staticPodStateReady, sets
// CurrentRevision = TargetRevision and TargetRevision = 0.
func (op *Operator) Installed(st *openshift.KubeAPIServerStatus, i int) {
	n := &st.NodeStatuses[i]
	if n.TargetRevision > n.CurrentRevision {
		n.CurrentRevision = n.TargetRevision
	}
	n.TargetRevision = 0
	op.SetConditions(st)
}

// InstallerFailed records node i's installer pod failing:
// newNodeStateForInstallInProgress, case corev1.PodFailed, sets
// LastFailedRevision = TargetRevision, LastFailedTime, LastFailedCount+1,
// LastFailedReason "InstallerFailed" (nodeStatusInstalledFailedReason) and
// the container's termination message as "installer: MESSAGE"; it keeps
// TargetRevision, so the installer is retried after a back-off (which the
// simulator never reaches: the rollout stops at the failure).
func (op *Operator) InstallerFailed(st *openshift.KubeAPIServerStatus, i int) {
	n := &st.NodeStatuses[i]
	n.LastFailedRevision, n.LastFailedReason = n.TargetRevision, "InstallerFailed"
	n.LastFailedCount++
	n.LastFailedTime = time.Now().UTC().Format(time.RFC3339)
	n.LastFailedRevisionErrors = []string{"installer: failed to copy static pod manifests: no space left on device"}
	op.SetConditions(st)
}

// message renders NodeInstallerProgressing's message from the nodes.
func (op *Operator) message(st *openshift.KubeAPIServerStatus) string {
	counts := map[int32]int{}
	for _, n := range st.NodeStatuses {
		counts[n.CurrentRevision]++
	}
	var revs []int32
	for r := range counts {
		revs = append(revs, r)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	var cs []openshift.RevisionCount
	for _, r := range revs {
		cs = append(cs, openshift.RevisionCount{Nodes: counts[r], Revision: r})
	}
	if counts[st.LatestAvailableRevision] == 0 {
		cs = append(cs, openshift.RevisionCount{Nodes: 0, Revision: st.LatestAvailableRevision, Achieved: true})
	}
	msg := openshift.FormatNodeInstallerMessage(cs)
	if op.Legacy {
		// Releases before 4.16: always the plural.
		msg = legacyGrammar(msg)
	}
	return msg
}

func legacyGrammar(s string) string {
	out := []byte{}
	for i := 0; i < len(s); {
		switch {
		case hasAt(s, i, " node is "):
			out = append(out, " nodes are "...)
			i += len(" node is ")
		case hasAt(s, i, " node has "):
			out = append(out, " nodes have "...)
			i += len(" node has ")
		default:
			out = append(out, s[i])
			i++
		}
	}
	return string(out)
}

func hasAt(s string, i int, sub string) bool { return len(s)-i >= len(sub) && s[i:i+len(sub)] == sub }

// SetConditions computes NodeInstallerProgressing and
// NodeInstallerDegraded from the node statuses as library-go does
// (installer_controller.go, prepareNodeInstallerConditionApplyConfiguration):
// a node is failing when its LastFailedRevision is its TargetRevision.
func (op *Operator) SetConditions(st *openshift.KubeAPIServerStatus) {
	now := time.Now().UTC().Format(time.RFC3339)
	prog := openshift.Condition{Type: openshift.CondNodeInstallerProgressing, Status: "True", Message: op.message(st), LastTransitionTime: now}
	all := true
	failing, failingCount := map[int32][]string{}, map[int32]int{}
	var failingRevs []int32
	for _, n := range st.NodeStatuses {
		all = all && n.CurrentRevision == st.LatestAvailableRevision
		if n.LastFailedRevision != 0 && n.LastFailedRevision == n.TargetRevision {
			if _, ok := failing[n.LastFailedRevision]; !ok {
				failingRevs = append(failingRevs, n.LastFailedRevision)
			}
			failing[n.LastFailedRevision] = append(failing[n.LastFailedRevision], n.LastFailedRevisionErrors...)
			failingCount[n.LastFailedRevision]++
		}
	}
	if all {
		prog.Status, prog.Reason = "False", openshift.ReasonAllNodesAtLatest
	}
	deg := openshift.Condition{Type: openshift.CondNodeInstallerDegraded, Status: "False", LastTransitionTime: now}
	if len(failing) > 0 {
		// Always "nodes are", even for one node, as library-go writes it.
		sort.Slice(failingRevs, func(i, j int) bool { return failingRevs[i] < failingRevs[j] })
		var parts []string
		for _, r := range failingRevs {
			parts = append(parts, fmt.Sprintf("%d nodes are failing on revision %d:\n%s", failingCount[r], r, strings.Join(failing[r], "\n")))
		}
		deg.Status, deg.Reason, deg.Message = "True", openshift.ReasonInstallerPodFailed, strings.Join(parts, "; ")
	}
	st.Conditions = []openshift.Condition{prog, deg}
}

// Write applies fn to the current status and writes it through the status
// subresource, retrying on conflicts.
func (op *Operator) Write(ctx context.Context, fn func(*openshift.KubeAPIServerStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := op.KAS().Get(ctx, openshift.ClusterName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st, err := openshift.StatusOf(obj)
		if err != nil {
			return err
		}
		fn(st)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
		if err != nil {
			return err
		}
		obj.Object["status"] = m
		_, err = op.KAS().UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		op.mu.Lock()
		defer op.mu.Unlock()
		switch {
		case err == nil:
			op.lastWrite = time.Now()
		case apierrors.IsInvalid(err):
			op.rejected = append(op.rejected, err)
		}
		return err
	})
}

// Run reacts to issuer changes until ctx ends (Wait waits for that). It
// returns once it watches, or the error of its first read.
func (op *Operator) Run(ctx context.Context) error {
	// Like a real controller, watch from the list's resourceVersion and
	// list again when a watch reports an error (410 after a compaction).
	list := func() (string, string, error) {
		l, err := op.auth().List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", "", err
		}
		if len(l.Items) == 0 {
			return "", "", fmt.Errorf("no authentications.config.openshift.io")
		}
		return openshift.IssuerOf(&l.Items[0]), l.GetResourceVersion(), nil
	}
	issuer, rv, err := list()
	if err != nil {
		return err
	}
	observe := func(n string) {
		if n != issuer {
			old := issuer
			issuer = n
			if !op.Stuck {
				op.rollout(ctx, old, n)
			}
		}
	}
	ready := make(chan struct{})
	op.running.Add(1)
	go func() {
		defer op.running.Done()
		first := true
		for ctx.Err() == nil {
			if rv == "" {
				n, r, err := list()
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				rv = r
				observe(n)
			}
			w, err := op.auth().Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if first {
				close(ready)
				first = false
			}
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					rv = ""
					break
				}
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || ev.Type != watch.Modified {
					continue
				}
				rv = u.GetResourceVersion()
				observe(openshift.IssuerOf(u))
			}
			w.Stop()
		}
	}()
	<-ready
	return nil
}

// Wait returns once Run's goroutine has ended (after its ctx ended).
func (op *Operator) Wait() { op.running.Wait() }

func (op *Operator) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (op *Operator) rollout(ctx context.Context, oldIssuer, newIssuer string) {
	op.mu.Lock()
	op.rollouts++
	op.mu.Unlock()
	if !op.sleep(ctx, op.RaiseDelay) {
		return
	}
	start := 0
	_ = op.Write(ctx, func(st *openshift.KubeAPIServerStatus) {
		start = firstNode(st)
		st.LatestAvailableRevision++
		exp := time.Now().Add(op.TrustFor).UTC().Format(time.RFC3339)
		trusted := []openshift.ServiceAccountIssuer{{Name: openshift.EffectiveIssuer(newIssuer)}}
		for _, i := range st.ServiceAccountIssuers {
			switch {
			case i.Name == openshift.EffectiveIssuer(newIssuer):
			case i.Name == openshift.EffectiveIssuer(oldIssuer) || i.ExpirationTime == "":
				trusted = append(trusted, openshift.ServiceAccountIssuer{Name: i.Name, ExpirationTime: exp})
			default:
				trusted = append(trusted, i)
			}
		}
		st.ServiceAccountIssuers = trusted
		op.SetConditions(st)
	})
	for l := range op.Nodes {
		i := (start + l) % len(op.Nodes)
		if !op.sleep(ctx, op.StepDelay) {
			return
		}
		_ = op.Write(ctx, func(st *openshift.KubeAPIServerStatus) { op.StartInstall(st, i) })
		if !op.sleep(ctx, op.StepDelay) {
			return
		}
		if op.Nodes[i] == op.failNode() {
			_ = op.Write(ctx, func(st *openshift.KubeAPIServerStatus) { op.InstallerFailed(st, i) })
			return
		}
		_ = op.Write(ctx, func(st *openshift.KubeAPIServerStatus) { op.Installed(st, i) })
	}
}

// Rejected are the simulator's status writes the apiserver refused (the
// real CRD's schema and CEL rules): there must be none, since the real
// operator's writes pass them.
func (op *Operator) Rejected() []error {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]error(nil), op.rejected...)
}

// LastWrite is when the simulator's last accepted status write was made.
func (op *Operator) LastWrite() time.Time {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.lastWrite
}

// Rollouts counts the issuer changes the simulator reacted to.
func (op *Operator) Rollouts() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.rollouts
}

func (op *Operator) failNode() string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.FailNode
}

// SetFailNode makes node n's installer fail in the next rollouts ("" for none).
func (op *Operator) SetFailNode(n string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.FailNode = n
}
