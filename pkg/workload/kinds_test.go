package workload

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// kubectlNames are the names kubectl resolves to each kind: the API's
// kind, plural resource and short names (k8s.io/kubernetes
// pkg/registry/*/*/storage/storage.go, ShortNames: "deploy", "sts", "ds",
// "cj", "rs", "rc", "po"; Job has none) and kind.group.
var kubectlNames = map[string]struct {
	group, resource string
	short           []string
}{
	"Deployment":            {"apps", "deployments", []string{"deploy"}},
	"StatefulSet":           {"apps", "statefulsets", []string{"sts"}},
	"DaemonSet":             {"apps", "daemonsets", []string{"ds"}},
	"CronJob":               {"batch", "cronjobs", []string{"cj"}},
	"Job":                   {"batch", "jobs", nil},
	"ReplicaSet":            {"apps", "replicasets", []string{"rs"}},
	"ReplicationController": {"", "replicationcontrollers", []string{"rc"}},
	"Pod":                   {"", "pods", []string{"po"}},
}

// builtins are the table's kinds of the built-in groups, which client-go's
// typed fakes serve.
func builtins() []*Kind {
	var out []*Kind
	for _, k := range Kinds() {
		if k.BuiltIn() {
			out = append(out, k)
		}
	}
	return out
}

func TestTableNamesEveryKindAsTheAPIDoes(t *testing.T) {
	if len(builtins()) != len(kubectlNames) {
		t.Errorf("%d built-in kinds in the table, want %d", len(builtins()), len(kubectlNames))
	}
	for _, k := range builtins() {
		want, ok := kubectlNames[k.Kind]
		if !ok {
			t.Errorf("unexpected kind %s", k.Kind)
			continue
		}
		if k.Group != want.group || k.Resource != want.resource || strings.Join(k.Short, ",") != strings.Join(want.short, ",") || k.Version != "v1" {
			t.Errorf("%s: group %q resource %q short %v version %q", k.Kind, k.Group, k.Resource, k.Short, k.Version)
		}
	}
}

func TestParseAcceptsWhatKubectlAccepts(t *testing.T) {
	for kind, n := range kubectlNames {
		words := append([]string{kind, strings.ToLower(kind), strings.ToUpper(kind), n.resource}, n.short...)
		if n.group != "" {
			words = append(words, strings.ToLower(kind)+"."+n.group)
		}
		for _, w := range words {
			if k := Parse(w); k == nil || k.Kind != kind {
				t.Errorf("Parse(%q) = %v, want %s", w, k, kind)
			}
		}
	}
	for _, w := range []string{"", "deployment.batch", "deploy.apps", "pod.core", "secret", "svc", "deployments.apps/x", "jo", "cronjob.apps"} {
		if k := Parse(w); k != nil {
			t.Errorf("Parse(%q) = %s, want nil", w, k.Kind)
		}
	}
}

func TestForAndForObjectRoundTrip(t *testing.T) {
	for _, k := range Kinds() {
		if Lookup(k.Group, k.Kind) != k || k.BuiltIn() && For(k.Kind) != k || !k.BuiltIn() && For(k.Kind) != nil {
			t.Errorf("For(%q) is not its row", k.Kind)
		}
		obj := k.New()
		if ForObject(obj) != k {
			t.Errorf("ForObject(%T) is not %s", obj, k.Kind)
		}
		if gvk := k.GroupVersionKind(); gvk.Kind != k.Kind || gvk.Group != k.Group || k.APIVersion() != gvk.GroupVersion().String() {
			t.Errorf("%s: gvk %v apiVersion %q", k.Kind, gvk, k.APIVersion())
		}
	}
	if For("Secret") != nil || For("deployment") != nil || ForObject(&corev1.Secret{}) != nil || ForObject(&appsv1.DeploymentList{}) != nil {
		t.Error("a kind outside the table was found")
	}
	if got := strings.Join(Names(), " "); got != "deployment statefulset daemonset cronjob job replicaset replicationcontroller pod "+
		"rollout.argoproj.io service.serving.knative.dev configuration.serving.knative.dev revision.serving.knative.dev scaledjob.keda.sh deploymentconfig.apps.openshift.io "+
		"workflow.argoproj.io workflowtemplate.argoproj.io cronworkflow.argoproj.io clusterworkflowtemplate.argoproj.io" {
		t.Errorf("Names() = %s", got)
	}
}

func TestRefAndResourceGroup(t *testing.T) {
	for kind, want := range map[string]string{"Deployment": "deployments.apps", "CronJob": "cronjobs.batch", "Pod": "pods", "ReplicationController": "replicationcontrollers"} {
		if got := For(kind).ResourceGroup(); got != want {
			t.Errorf("%s: ResourceGroup %q, want %q", kind, got, want)
		}
	}
	if got := For("StatefulSet").Ref("db"); got != "statefulset/db" {
		t.Errorf("Ref = %q", got)
	}
}

// TestTemplateIsInPlace: the template returned is the object's own, so
// that changing it changes the object (the pod's is made up and is not).
func TestTemplateIsInPlace(t *testing.T) {
	for _, k := range builtins() {
		if k.Kind == "Pod" {
			continue
		}
		obj := k.New()
		k.Template(obj).Spec.ServiceAccountName = "changed"
		if got := k.Template(obj).Spec.ServiceAccountName; got != "changed" {
			t.Errorf("%s: template not in place (%q)", k.Kind, got)
		}
		// And the template is where TemplatePath says.
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		var cur any = m
		for _, p := range append(append([]string{}, k.TemplatePath...), "spec", "serviceAccountName") {
			cur = cur.(map[string]any)[p]
		}
		if cur != "changed" {
			t.Errorf("%s: TemplatePath %v does not lead to the template", k.Kind, k.TemplatePath)
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}, Spec: corev1.PodSpec{ServiceAccountName: "sa"}}
	tpl := For("Pod").Template(pod)
	if tpl.Labels["a"] != "b" || tpl.Spec.ServiceAccountName != "sa" {
		t.Errorf("pod template %+v", tpl)
	}
}

func TestReplicationControllerWithoutTemplateGetsAnEmptyOne(t *testing.T) {
	rc := &corev1.ReplicationController{}
	tpl := For("ReplicationController").Template(rc)
	if tpl == nil || rc.Spec.Template != tpl {
		t.Fatalf("template %v, object's %v", tpl, rc.Spec.Template)
	}
	n := 0
	VisitSecretNames(&tpl.Spec, func(string, string) { n++ })
	if n != 0 {
		t.Error("an empty template reads Secrets")
	}
}

func owned(kind string, controller bool) metav1.ObjectMeta {
	// The apiVersion each owner's controller writes in its references.
	apiVersion := map[string]string{"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "CronJob": "batch/v1", "Rollout": "argoproj.io/v1alpha1"}[kind]
	if apiVersion == "" {
		apiVersion = "example.com/v1"
	}
	return metav1.ObjectMeta{Name: "x", Namespace: "ns", OwnerReferences: []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", Controller: ptr.To(controller)}}}
}

func TestFollows(t *testing.T) {
	for _, c := range []struct {
		kind  string
		obj   metav1.Object
		owner bool
	}{
		{"ReplicaSet", &appsv1.ReplicaSet{ObjectMeta: owned("Deployment", true)}, true},
		{"ReplicaSet", &appsv1.ReplicaSet{ObjectMeta: owned("Deployment", false)}, false},
		{"ReplicaSet", &appsv1.ReplicaSet{ObjectMeta: owned("Other", true)}, false},
		{"ReplicaSet", &appsv1.ReplicaSet{}, false},
		{"Job", &batchv1.Job{ObjectMeta: owned("CronJob", true)}, true},
		{"Job", &batchv1.Job{ObjectMeta: owned("Deployment", true)}, false},
		{"Pod", &corev1.Pod{ObjectMeta: owned("ReplicaSet", true)}, true},
		{"Pod", &corev1.Pod{ObjectMeta: owned("AnyController", true)}, true},
		{"Pod", &corev1.Pod{ObjectMeta: owned("ReplicaSet", false)}, false},
		{"Pod", &corev1.Pod{}, false},
		{"Deployment", &appsv1.Deployment{ObjectMeta: owned("Something", true)}, false},
		{"CronJob", &batchv1.CronJob{ObjectMeta: owned("Something", true)}, false},
	} {
		if got := For(c.kind).Follows(c.obj); got != c.owner {
			t.Errorf("%s owned by %v: Follows = %v, want %v", c.kind, c.obj.GetOwnerReferences(), got, c.owner)
		}
	}
	if got := Controller(&corev1.Pod{ObjectMeta: owned("ReplicaSet", true)}); got != "replicaset/owner" {
		t.Errorf("Controller = %q", got)
	}
	// Outside the built-in groups, the type carries its group, as kubectl
	// names it: an API's Service is not the core Service.
	if got := Controller(&appsv1.ReplicaSet{ObjectMeta: owned("Rollout", true)}); got != "rollout.argoproj.io/owner" {
		t.Errorf("Controller of a Rollout's ReplicaSet = %q", got)
	}
	if got := Controller(&corev1.Pod{ObjectMeta: owned("ReplicaSet", false)}); got != "" {
		t.Errorf("Controller of a non-controller owner = %q", got)
	}
}

// TestListPagesThrough: List follows the continue token to the last page.
func TestListPagesThrough(t *testing.T) {
	for _, k := range builtins() {
		t.Run(k.Kind, func(t *testing.T) {
			c := fake.NewClientset()
			var limits []int64
			c.PrependReactor("list", k.Resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
				lo := a.(k8stesting.ListActionImpl).ListOptions
				limits = append(limits, lo.Limit)
				page := 0
				if lo.Continue != "" {
					fmt.Sscanf(lo.Continue, "page-%d", &page)
				}
				obj := k.New()
				obj.SetName(fmt.Sprintf("o%d", page))
				obj.SetNamespace(a.GetNamespace())
				list := listOf(t, k, obj)
				if page < 2 {
					list.(metav1.ListInterface).SetContinue(fmt.Sprintf("page-%d", page+1))
				}
				return true, list, nil
			})
			var got []string
			if err := k.List(context.Background(), Clients{Kube: c}, "ns", metav1.ListOptions{Limit: 1}, func(o Object) { got = append(got, o.GetNamespace()+"/"+o.GetName()) }); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != "ns/o0 ns/o1 ns/o2" {
				t.Errorf("listed %v, want three pages", got)
			}
			for _, l := range limits {
				if l != 1 {
					t.Errorf("page limit %d, want 1", l)
				}
			}
		})
	}
}

// listOf makes the typed list of k holding obj.
func listOf(t *testing.T, k *Kind, obj Object) runtime.Object {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &appsv1.DeploymentList{Items: []appsv1.Deployment{*o}}
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSetList{Items: []appsv1.StatefulSet{*o}}
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSetList{Items: []appsv1.DaemonSet{*o}}
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSetList{Items: []appsv1.ReplicaSet{*o}}
	case *batchv1.CronJob:
		return &batchv1.CronJobList{Items: []batchv1.CronJob{*o}}
	case *batchv1.Job:
		return &batchv1.JobList{Items: []batchv1.Job{*o}}
	case *corev1.ReplicationController:
		return &corev1.ReplicationControllerList{Items: []corev1.ReplicationController{*o}}
	case *corev1.Pod:
		return &corev1.PodList{Items: []corev1.Pod{*o}}
	}
	t.Fatalf("no list for %s", k.Kind)
	return nil
}

// TestGetAndPatchReachTheirKind: Get and Patch go to the kind's own
// resource.
func TestGetAndPatchReachTheirKind(t *testing.T) {
	ctx := context.Background()
	for _, k := range builtins() {
		obj := k.New()
		obj.SetName("x")
		obj.SetNamespace("ns")
		c := fake.NewClientset(obj)
		got, err := k.Get(ctx, Clients{Kube: c}, "ns", "x")
		if err != nil || ForObject(got) != k || got.GetName() != "x" {
			t.Errorf("%s: Get = %v, %v", k.Kind, got, err)
			continue
		}
		p, err := k.Patch(ctx, Clients{Kube: c}, "ns", "x", types.MergePatchType, []byte(`{"metadata":{"labels":{"p":"1"}}}`), metav1.PatchOptions{})
		if err != nil || p.GetLabels()["p"] != "1" {
			t.Errorf("%s: Patch = %v, %v", k.Kind, p, err)
		}
		var verbs []string
		for _, a := range c.Actions() {
			if a.GetResource().Resource != k.Resource {
				t.Errorf("%s: %s on %s", k.Kind, a.GetVerb(), a.GetResource().Resource)
			}
			verbs = append(verbs, a.GetVerb())
		}
		sort.Strings(verbs)
		if strings.Join(verbs, " ") != "get patch" {
			t.Errorf("%s: actions %v", k.Kind, verbs)
		}
	}
}
