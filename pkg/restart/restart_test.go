// The tests use the exported API only (an external test package), because
// the per-kind internals are due to move to another package.
package restart_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/restart"
)

const restartedAt = "kubectl.kubernetes.io/restartedAt"

func ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// template carries an annotation of its own, so a test can see that the
// restart patch merges into the template rather than replacing it.
func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"keep": "me"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func meta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID(namespace + "-" + name + "-uid")}
}

func deployment(namespace, name string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta(namespace, name), Spec: appsv1.DeploymentSpec{Template: template()}}
}

func statefulSet(namespace, name string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: meta(namespace, name), Spec: appsv1.StatefulSetSpec{Template: template()}}
}

func daemonSet(namespace, name string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: meta(namespace, name), Spec: appsv1.DaemonSetSpec{Template: template()}}
}

func pod(namespace, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: meta(namespace, name), Spec: template().Spec}
}

// writes are the actions that change something, as "verb resource ns/name".
func writes(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a := a.(type) {
		case clienttesting.PatchAction:
			out = append(out, "patch "+a.GetResource().Resource+" "+a.GetNamespace()+"/"+a.GetName())
		case clienttesting.DeleteAction:
			out = append(out, "delete "+a.GetResource().Resource+" "+a.GetNamespace()+"/"+a.GetName())
		case clienttesting.CreateAction, clienttesting.UpdateAction:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

// runFunc is Workloads or Pods: both select namespaces the same way.
type runFunc func(context.Context, *fake.Clientset, restart.Options) (*restart.Result, error)

func workloads(ctx context.Context, cs *fake.Clientset, o restart.Options) (*restart.Result, error) {
	return restart.Workloads(ctx, cs, o)
}

func pods(ctx context.Context, cs *fake.Clientset, o restart.Options) (*restart.Result, error) {
	return restart.Pods(ctx, cs, o)
}

func TestIsSystemNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns   string
		want bool
	}{
		{"kube-system", true},
		{"kube-public", true},
		{"kube-node-lease", true},
		{"openshift", true},
		{"openshift-monitoring", true},
		{"default", false},
		// Only the exact name or the dash-separated prefix counts: these
		// are user namespaces that merely start with the same letters.
		{"kubeflow", false},
		{"openshiftish", false},
		{"my-kube-system", false},
		{"", false},
	} {
		if got := restart.IsSystemNamespace(tc.ns); got != tc.want {
			t.Errorf("IsSystemNamespace(%q) = %v, want %v", tc.ns, got, tc.want)
		}
	}
}

// Deployments, StatefulSets and DaemonSets get the strategic merge patch
// `kubectl rollout restart` sends: the restartedAt pod-template annotation
// and nothing else. Other pod owners (ReplicaSets, Jobs) and bare pods are
// not touched: their pods would not roll.
func TestWorkloadsPatchesRestartedAtOnRollingKinds(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("app", "rs"), Spec: appsv1.ReplicaSetSpec{Template: template()}}
	job := &batchv1.Job{ObjectMeta: meta("app", "job"), Spec: batchv1.JobSpec{Template: template()}}
	cs := fake.NewClientset(ns("app"), deployment("app", "web"), statefulSet("app", "db"), daemonSet("app", "agent"), rs, job, pod("app", "bare"))

	before := time.Now().Add(-time.Second)
	res, err := restart.Workloads(context.Background(), cs, restart.Options{Namespaces: []string{"app"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deployment/app/web", "statefulset/app/db", "daemonset/app/agent"}
	if !reflect.DeepEqual(res.Restarted, want) || res.Namespaces != 1 || len(res.Failed) != 0 {
		t.Fatalf("result = %+v, want restarted %v in 1 namespace", res, want)
	}
	wantWrites := []string{"patch deployments app/web", "patch statefulsets app/db", "patch daemonsets app/agent"}
	if got := writes(cs); !reflect.DeepEqual(got, wantWrites) {
		t.Fatalf("writes = %v, want %v", got, wantWrites)
	}

	for _, a := range cs.Actions() {
		p, ok := a.(clienttesting.PatchAction)
		if !ok {
			continue
		}
		if p.GetPatchType() != types.StrategicMergePatchType {
			t.Errorf("%s: patch type %s, want %s", p.GetName(), p.GetPatchType(), types.StrategicMergePatchType)
		}
		// The patch holds the one annotation: anything else would change
		// the workload beyond what a rollout restart does.
		var body struct {
			Spec struct {
				Template struct {
					Metadata struct {
						Annotations map[string]string `json:"annotations"`
					} `json:"metadata"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(p.GetPatch(), &body); err != nil {
			t.Fatalf("%s: patch %s: %v", p.GetName(), p.GetPatch(), err)
		}
		var generic map[string]any
		_ = json.Unmarshal(p.GetPatch(), &generic)
		ann := body.Spec.Template.Metadata.Annotations
		if len(generic) != 1 || len(ann) != 1 {
			t.Errorf("%s: patch %s, want only %s", p.GetName(), p.GetPatch(), restartedAt)
		}
		at, err := time.Parse(time.RFC3339, ann[restartedAt])
		if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now()) {
			t.Errorf("%s: %s = %q, want the time of the restart in RFC 3339", p.GetName(), restartedAt, ann[restartedAt])
		}
	}

	// The stored templates have the annotation and keep their own.
	ctx := context.Background()
	d, _ := cs.AppsV1().Deployments("app").Get(ctx, "web", metav1.GetOptions{})
	s, _ := cs.AppsV1().StatefulSets("app").Get(ctx, "db", metav1.GetOptions{})
	ds, _ := cs.AppsV1().DaemonSets("app").Get(ctx, "agent", metav1.GetOptions{})
	for name, ann := range map[string]map[string]string{
		"deployment": d.Spec.Template.Annotations, "statefulset": s.Spec.Template.Annotations, "daemonset": ds.Spec.Template.Annotations,
	} {
		if ann[restartedAt] == "" || ann["keep"] != "me" {
			t.Errorf("%s template annotations = %v, want %s added and keep=me kept", name, ann, restartedAt)
		}
	}
}

// Without Options.Namespaces every namespace is listed and the system ones
// are skipped (and reported) unless IncludeSystem; namespaces are handled in
// name order. An explicit list is taken as given, system namespaces included.
func TestNamespaceSelection(t *testing.T) {
	objs := []runtime.Object{
		ns("zeta"), ns("alpha"), ns("kube-system"), ns("openshift-etcd"),
		deployment("zeta", "z"), deployment("alpha", "a"), deployment("kube-system", "dns"), deployment("openshift-etcd", "etcd"),
	}
	for _, tc := range []struct {
		name        string
		opts        restart.Options
		wantDone    []string
		wantSkipped []string
	}{
		{"every namespace, system skipped", restart.Options{},
			[]string{"deployment/alpha/a", "deployment/zeta/z"}, []string{"kube-system", "openshift-etcd"}},
		{"every namespace, system included", restart.Options{IncludeSystem: true},
			[]string{"deployment/alpha/a", "deployment/kube-system/dns", "deployment/openshift-etcd/etcd", "deployment/zeta/z"}, nil},
		{"explicit list, sorted", restart.Options{Namespaces: []string{"zeta", "alpha"}},
			[]string{"deployment/alpha/a", "deployment/zeta/z"}, nil},
		{"explicit system namespace", restart.Options{Namespaces: []string{"kube-system"}},
			[]string{"deployment/kube-system/dns"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for kind, run := range map[string]runFunc{"Workloads": workloads, "Pods": pods} {
				cs := fake.NewClientset(objs...)
				// Pods mirror the deployments: pod/NS/NAME for deployment/NS/NAME.
				for _, o := range objs {
					if d, ok := o.(*appsv1.Deployment); ok {
						_ = cs.Tracker().Add(pod(d.Namespace, d.Name))
					}
				}
				res, err := run(context.Background(), cs, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.wantDone
				if kind == "Pods" {
					want = nil
					for _, w := range tc.wantDone {
						want = append(want, "pod/"+strings.TrimPrefix(w, "deployment/"))
					}
				}
				if !reflect.DeepEqual(res.Restarted, want) || !reflect.DeepEqual(res.Skipped, tc.wantSkipped) || res.Namespaces != len(want) {
					t.Errorf("%s: restarted %v skipped %v in %d namespaces, want %v skipped %v", kind, res.Restarted, res.Skipped, res.Namespaces, want, tc.wantSkipped)
				}
				// An explicit list is not checked against the cluster's
				// namespaces, so it needs no right to list them.
				listed := false
				for _, a := range cs.Actions() {
					listed = listed || (a.GetVerb() == "list" && a.GetResource().Resource == "namespaces")
				}
				if listed != (len(tc.opts.Namespaces) == 0) {
					t.Errorf("%s: namespaces listed = %v with Namespaces %v", kind, listed, tc.opts.Namespaces)
				}
			}
		})
	}
}

// One failed workload is reported in Result.Failed and through Progress and
// does not stop the others: a paused Deployment (kubectl refuses to restart
// it) and a patch the API refuses.
func TestWorkloadsReportsFailuresAndGoesOn(t *testing.T) {
	paused := deployment("app", "paused")
	paused.Spec.Paused = true
	cs := fake.NewClientset(paused, deployment("app", "web"), statefulSet("app", "db"), daemonSet("app", "agent"))
	cs.PrependReactor("patch", "statefulsets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, "db", errors.New("no patch"))
	})
	var progress []string
	res, err := restart.Workloads(context.Background(), cs, restart.Options{Namespaces: []string{"app"}, Progress: func(s string) { progress = append(progress, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"deployment/app/web", "daemonset/app/agent"}; !reflect.DeepEqual(res.Restarted, want) {
		t.Errorf("restarted %v, want %v", res.Restarted, want)
	}
	if len(res.Failed) != 2 ||
		!strings.HasPrefix(res.Failed[0], "deployment/app/paused: ") || !strings.Contains(res.Failed[0], "paused") ||
		!strings.HasPrefix(res.Failed[1], "statefulset/app/db: ") || !strings.Contains(res.Failed[1], "forbidden") {
		t.Errorf("failed = %q, want the paused deployment and the refused statefulset, each with its reason", res.Failed)
	}
	wantProgress := []string{res.Failed[0], res.Failed[1], "namespace app: restarted 2 workloads (1/1 namespaces)"}
	if !reflect.DeepEqual(progress, wantProgress) {
		t.Errorf("progress = %q, want %q", progress, wantProgress)
	}
}

// Errors that leave no answer stop the run: without the namespace list
// there is nothing to do (no Result); a failed list in a namespace returns
// what was done before it.
func TestListErrorsStopTheRun(t *testing.T) {
	forbidden := func(res string) clienttesting.ReactionFunc {
		return func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: res}, "", errors.New("no list"))
		}
	}
	for _, run := range []struct {
		name string
		fn   runFunc
		res  string // what the per-namespace list reads
	}{
		{"Workloads", workloads, "daemonsets"},
		{"Pods", pods, "pods"},
	} {
		cs := fake.NewClientset(ns("a"))
		cs.PrependReactor("list", "namespaces", forbidden("namespaces"))
		res, err := run.fn(context.Background(), cs, restart.Options{})
		if res != nil || err == nil || !strings.Contains(err.Error(), "list namespaces") {
			t.Errorf("%s, namespaces not listable: %+v, %v; want no result and a list namespaces error", run.name, res, err)
		}

		cs = fake.NewClientset()
		cs.PrependReactor("list", run.res, func(a clienttesting.Action) (bool, runtime.Object, error) {
			if a.GetNamespace() == "b" {
				return forbidden(run.res)(a)
			}
			return false, nil, nil
		})
		res, err = run.fn(context.Background(), cs, restart.Options{Namespaces: []string{"a", "b", "c"}})
		if err == nil || !strings.Contains(err.Error(), "list "+run.res+" in b") || res == nil || res.Namespaces != 1 {
			t.Errorf("%s, list refused in b: %+v, %v; want 1 namespace done and a list %s in b error", run.name, res, err, run.res)
		}
	}
}

// Pods deletes every pod of the selected namespaces (the code has no filter
// by token kind: every pod gets a fresh token when re-created), each under a
// uid precondition so that a retry never deletes the pod that replaced it.
func TestPodsDeletesEveryPodWithUIDPrecondition(t *testing.T) {
	cs := fake.NewClientset(ns("app"), pod("app", "a"), pod("app", "b"), pod("other", "c"))
	res, err := restart.Pods(context.Background(), cs, restart.Options{Namespaces: []string{"app"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pod/app/a", "pod/app/b"}; !reflect.DeepEqual(res.Restarted, want) || res.Namespaces != 1 {
		t.Fatalf("result = %+v, want %v", res, want)
	}
	if want := []string{"delete pods app/a", "delete pods app/b"}; !reflect.DeepEqual(writes(cs), want) {
		t.Fatalf("writes = %v, want %v", writes(cs), want)
	}
	for _, a := range cs.Actions() {
		d, ok := a.(clienttesting.DeleteActionImpl)
		if !ok {
			continue
		}
		pre := d.DeleteOptions.Preconditions
		if want := types.UID("app-" + d.Name + "-uid"); pre == nil || pre.UID == nil || *pre.UID != want {
			t.Errorf("delete %s: preconditions %+v, want uid %s", d.Name, pre, want)
		}
	}
	if _, err := cs.CoreV1().Pods("other").Get(context.Background(), "c", metav1.GetOptions{}); err != nil {
		t.Errorf("pod of an unselected namespace: %v", err)
	}
}

// A pod already gone (not found) or replaced under its name (the uid
// precondition's conflict) counts as restarted: what runs there now has a
// fresh token. Any other refusal is a failure, reported and passed over.
func TestPodsDeleteOutcomes(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	errs := map[string]error{
		"gone":     apierrors.NewNotFound(gr, "gone"),
		"replaced": apierrors.NewConflict(gr, "replaced", errors.New("Precondition failed: UID in precondition: x, UID in object meta: y")),
		"refused":  apierrors.NewForbidden(gr, "refused", errors.New("no delete")),
	}
	cs := fake.NewClientset(pod("app", "gone"), pod("app", "ok"), pod("app", "refused"), pod("app", "replaced"))
	cs.PrependReactor("delete", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if err, ok := errs[a.(clienttesting.DeleteAction).GetName()]; ok {
			return true, nil, err
		}
		return false, nil, nil
	})
	var progress []string
	res, err := restart.Pods(context.Background(), cs, restart.Options{Namespaces: []string{"app"}, Progress: func(s string) { progress = append(progress, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pod/app/gone", "pod/app/ok", "pod/app/replaced"}; !reflect.DeepEqual(res.Restarted, want) {
		t.Errorf("restarted %v, want %v", res.Restarted, want)
	}
	if len(res.Failed) != 1 || !strings.HasPrefix(res.Failed[0], "pod/app/refused: ") || !strings.Contains(res.Failed[0], "forbidden") {
		t.Errorf("failed = %q, want pod/app/refused with its reason", res.Failed)
	}
	if want := []string{res.Failed[0], "namespace app: deleted 3 pods (1/1 namespaces)"}; !reflect.DeepEqual(progress, want) {
		t.Errorf("progress = %q, want %q", progress, want)
	}
}

// DryRun reports what would be restarted and writes nothing; it does not
// pause between namespaces either (a Pause of an hour would hang the test).
func TestDryRunWritesNothing(t *testing.T) {
	objs := []runtime.Object{ns("a"), ns("b"), deployment("a", "web"), daemonSet("b", "agent"), pod("a", "p"), pod("b", "q")}
	for _, tc := range []struct {
		name string
		run  runFunc
		want []string
	}{
		{"Workloads", workloads, []string{"deployment/a/web", "daemonset/b/agent"}},
		{"Pods", pods, []string{"pod/a/p", "pod/b/q"}},
	} {
		cs := fake.NewClientset(objs...)
		res, err := within(t, 10*time.Second, func() (*restart.Result, error) {
			return tc.run(context.Background(), cs, restart.Options{DryRun: cmdutil.DryRunClient, Pause: time.Hour})
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(res.Restarted, tc.want) || res.Namespaces != 2 {
			t.Errorf("%s: %+v, want %v in 2 namespaces", tc.name, res, tc.want)
		}
		if w := writes(cs); len(w) != 0 {
			t.Errorf("%s: dry run wrote %v", tc.name, w)
		}
	}
}

// The pause between namespaces ends when the context does: the run returns
// the context's error and what it did so far instead of waiting it out.
func TestPauseEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, run := range map[string]runFunc{"Workloads": workloads, "Pods": pods} {
		// The fake clientset ignores the context, so the first namespace
		// is done before the pause is reached.
		cs := fake.NewClientset(deployment("a", "web"), pod("a", "p"))
		res, err := within(t, 10*time.Second, func() (*restart.Result, error) {
			return run(ctx, cs, restart.Options{Namespaces: []string{"a", "b"}, Pause: time.Hour})
		})
		if !errors.Is(err, context.Canceled) || res == nil || res.Namespaces != 1 || len(res.Restarted) != 1 {
			t.Errorf("%s: %+v, %v; want the first namespace done and context.Canceled", name, res, err)
		}
	}
}

// within fails the test when fn does not return in time, rather than
// letting a missed rule hang the test binary.
func within(t *testing.T, d time.Duration, fn func() (*restart.Result, error)) (*restart.Result, error) {
	t.Helper()
	type answer struct {
		res *restart.Result
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		res, err := fn()
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
		return nil, nil
	}
}
