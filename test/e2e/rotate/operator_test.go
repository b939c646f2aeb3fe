package rotate

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
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

// operator simulates cluster-kube-apiserver-operator's reaction to a change
// of spec.serviceAccountIssuer, writing the status the real one writes:
//   - nothing for RaiseDelay: NodeInstallerProgressing keeps saying
//     AllNodesAtLatestRevision about the OLD revision (the race);
//   - then latestAvailableRevision+1, the old issuer listed in
//     status.serviceAccountIssuers with an expiry, Progressing True with an
//     empty reason and "N nodes are at revision R; 0 nodes have achieved new
//     revision R+1";
//   - nodes move one at a time (targetRevision, then currentRevision), the
//     message in the current or the legacy ("1 nodes are") grammar;
//   - optionally FailNode's installer fails: lastFailedRevision,
//     lastFailedReason, lastFailedRevisionErrors and NodeInstallerDegraded
//     InstallerPodFailed; the rollout stops there;
//   - else Progressing False/AllNodesAtLatestRevision.
type operator struct {
	dyn        dynamic.Interface
	Nodes      []string
	RaiseDelay time.Duration
	StepDelay  time.Duration
	Legacy     bool
	FailNode   string
	// Stuck: never react (for the timeout test).
	Stuck    bool
	TrustFor time.Duration

	mu        sync.Mutex
	rollouts  int
	lastWrite time.Time
}

func newOperator(dyn dynamic.Interface) *operator {
	return &operator{dyn: dyn, Nodes: []string{"master-0", "master-1", "master-2"}, RaiseDelay: 700 * time.Millisecond, StepDelay: 200 * time.Millisecond, TrustFor: 24 * time.Hour}
}

func (op *operator) kas() dynamic.ResourceInterface {
	return op.dyn.Resource(openshift.KubeAPIServerGVR)
}
func (op *operator) auth() dynamic.ResourceInterface {
	return op.dyn.Resource(openshift.AuthenticationGVR)
}

// reset puts both objects in a settled state: issuer, every node at
// revision, the given trusted issuers (active one first).
func (op *operator) reset(t testing.TB, issuer string, revision int32, trusted []openshift.ServiceAccountIssuer) {
	t.Helper()
	ctx := context.Background()
	a, err := op.auth().Get(ctx, openshift.ClusterName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "config.openshift.io/v1", "kind": "Authentication", "metadata": map[string]any{"name": "cluster"}, "spec": map[string]any{}}}
		a, err = op.auth().Create(ctx, a, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	if issuer == "" {
		unstructured.RemoveNestedField(a.Object, "spec", "serviceAccountIssuer")
	} else {
		_ = unstructured.SetNestedField(a.Object, issuer, "spec", "serviceAccountIssuer")
	}
	if _, err := op.auth().Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.kas().Get(ctx, openshift.ClusterName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		k := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "operator.openshift.io/v1", "kind": "KubeAPIServer", "metadata": map[string]any{"name": "cluster"}, "spec": map[string]any{"managementState": "Managed"}}}
		if _, err := op.kas().Create(ctx, k, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if trusted == nil {
		trusted = []openshift.ServiceAccountIssuer{{Name: openshift.EffectiveIssuer(issuer)}}
	}
	st := &openshift.KubeAPIServerStatus{LatestAvailableRevision: revision, ServiceAccountIssuers: trusted}
	for _, n := range op.Nodes {
		st.NodeStatuses = append(st.NodeStatuses, openshift.NodeStatus{NodeName: n, CurrentRevision: revision})
	}
	op.setConditions(st, false)
	if err := op.write(ctx, func(s *openshift.KubeAPIServerStatus) { *s = *st }); err != nil {
		t.Fatal(err)
	}
}

// message renders NodeInstallerProgressing's message from the nodes.
func (op *operator) message(st *openshift.KubeAPIServerStatus) string {
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

func (op *operator) setConditions(st *openshift.KubeAPIServerStatus, degraded bool) {
	now := time.Now().UTC().Format(time.RFC3339)
	prog := openshift.Condition{Type: openshift.CondNodeInstallerProgressing, Status: "True", Message: op.message(st), LastTransitionTime: now}
	all := true
	for _, n := range st.NodeStatuses {
		all = all && n.CurrentRevision == st.LatestAvailableRevision
	}
	if all {
		prog.Status, prog.Reason = "False", openshift.ReasonAllNodesAtLatest
	}
	deg := openshift.Condition{Type: openshift.CondNodeInstallerDegraded, Status: "False", LastTransitionTime: now}
	if degraded {
		deg.Status, deg.Reason = "True", openshift.ReasonInstallerPodFailed
		deg.Message = fmt.Sprintf("1 nodes are failing on revision %d:\ninstaller: failed to copy static pod manifests: no space left on device", st.LatestAvailableRevision)
	}
	st.Conditions = []openshift.Condition{prog, deg}
}

// write applies fn to the current status and writes it through the status
// subresource, retrying on conflicts.
func (op *operator) write(ctx context.Context, fn func(*openshift.KubeAPIServerStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := op.kas().Get(ctx, openshift.ClusterName, metav1.GetOptions{})
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
		_, err = op.kas().UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		if err == nil {
			op.mu.Lock()
			op.lastWrite = time.Now()
			op.mu.Unlock()
		}
		return err
	})
}

// run reacts to issuer changes until ctx ends. It returns once it watches.
func (op *operator) run(t testing.TB, ctx context.Context) {
	t.Helper()
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
		t.Fatal(err)
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
	go func() {
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
}

func (op *operator) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (op *operator) rollout(ctx context.Context, oldIssuer, newIssuer string) {
	op.mu.Lock()
	op.rollouts++
	op.mu.Unlock()
	if !op.sleep(ctx, op.RaiseDelay) {
		return
	}
	var rev int32
	_ = op.write(ctx, func(st *openshift.KubeAPIServerStatus) {
		st.LatestAvailableRevision++
		rev = st.LatestAvailableRevision
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
		op.setConditions(st, false)
	})
	for i := range op.Nodes {
		if !op.sleep(ctx, op.StepDelay) {
			return
		}
		_ = op.write(ctx, func(st *openshift.KubeAPIServerStatus) {
			st.NodeStatuses[i].TargetRevision = rev
			op.setConditions(st, false)
		})
		if !op.sleep(ctx, op.StepDelay) {
			return
		}
		if op.Nodes[i] == op.failNode() {
			_ = op.write(ctx, func(st *openshift.KubeAPIServerStatus) {
				n := &st.NodeStatuses[i]
				n.LastFailedRevision, n.LastFailedReason, n.LastFailedCount = rev, "InstallerFailed", 1
				n.LastFailedTime = time.Now().UTC().Format(time.RFC3339)
				n.LastFailedRevisionErrors = []string{"installer: failed to copy static pod manifests: no space left on device"}
				op.setConditions(st, true)
			})
			return
		}
		_ = op.write(ctx, func(st *openshift.KubeAPIServerStatus) {
			st.NodeStatuses[i].CurrentRevision = rev
			op.setConditions(st, false)
		})
	}
}

func (op *operator) rolloutCount() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.rollouts
}

func (op *operator) failNode() string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.FailNode
}

func (op *operator) setFailNode(n string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.FailNode = n
}
