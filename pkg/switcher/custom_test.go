package switcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

var rolloutsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// TestSwitchAndRestoreAnArgoRollout: a Rollout's template is found through
// the dynamic client, backed up with its group, switched by a merge patch
// guarded by its resourceVersion, and put back as the backup holds it,
// with the fields no typed template knows.
func TestSwitchAndRestoreAnArgoRollout(t *testing.T) {
	ctx := context.Background()
	template := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"serviceAccountName": "app",
			"containers":         []any{map[string]any{"name": "c", "image": "i", "volumeMounts": []any{map[string]any{"name": "tok", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}}}},
			"volumes":            []any{map[string]any{"name": "tok", "secret": map[string]any{"secretName": "app-token"}, "untypedByArgo": "kept"}},
		},
	}
	ro := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "web", "namespace": "ns", "uid": "uid-web", "resourceVersion": "5"},
		"spec":     map[string]any{"replicas": int64(0), "template": runtime.DeepCopyJSON(template)},
	}}
	kube := fake.NewSimpleClientset(token("app-token", "app"))
	serveCustomKinds(kube)
	lists := map[schema.GroupVersionResource]string{}
	for _, k := range workload.Kinds() {
		if !k.BuiltIn() {
			lists[k.GroupVersionResource()] = k.Kind + "List"
		}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, ro)
	c := workload.Clients{Kube: kube, Dynamic: dyn}
	plans, err := Find(ctx, c, FindOptions{Namespace: "ns"}, Options{})
	if err != nil || len(plans) != 1 || plans[0].Verdict != VerdictSwitchable || plans[0].Group != "argoproj.io" {
		t.Fatalf("plans %+v, %v", plans, err)
	}
	// Without a dynamic client the Rollout is not seen (nor read).
	if p, err := Find(ctx, workload.Clients{Kube: kube}, FindOptions{Namespace: "ns"}, Options{}); err != nil || len(p) != 0 {
		t.Fatalf("without a dynamic client: %+v, %v", p, err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Apply(ctx, c, b, plans, ApplyOptions{})
	b.Close()
	if err != nil || len(out) != 1 || out[0].Result != OutSwitched || out[0].Group != "argoproj.io" {
		t.Fatalf("apply: %+v, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rollout.argoproj.io", "ns", "web@5.json")); err != nil {
		t.Errorf("backup not filed under its group: %v", err)
	}
	cur, _ := dyn.Resource(rolloutsGVR).Namespace("ns").Get(ctx, "web", metav1.GetOptions{})
	vols, _, _ := unstructured.NestedSlice(cur.Object, "spec", "template", "spec", "volumes")
	if len(vols) != 1 || vols[0].(map[string]any)["projected"] == nil {
		t.Fatalf("volumes after switch: %v", vols)
	}
	for _, a := range dyn.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && !strings.Contains(string(p.GetPatch()), `"resourceVersion":"5"`) {
			t.Errorf("patch without the backed-up resourceVersion: %s", p.GetPatch())
		}
	}

	f, err := backup.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenRestore(f)
	if err != nil || r.Count() != 1 {
		t.Fatalf("open restore: %v", err)
	}
	none := func(context.Context, string, []string) ([]string, error) { return nil, nil }
	res := Restore(ctx, c, r, RestoreOptions{Blocking: none})
	if len(res) != 1 || res[0].Result != OutRestored {
		t.Fatalf("restore: %+v", res)
	}
	cur, _ = dyn.Resource(rolloutsGVR).Namespace("ns").Get(ctx, "web", metav1.GetOptions{})
	if got, _, _ := unstructured.NestedMap(cur.Object, "spec", "template"); !reflect.DeepEqual(got, template) {
		t.Errorf("template not put back byte for byte:\n%v\nwant\n%v", got, template)
	}
}

// TestDeploymentRunByARollout: a Deployment whose template an Argo Rollout
// runs (spec.workloadRef) is switched with a warning naming the Rollout,
// whose own rollout the run does not follow; found whether the Deployment
// is listed or named.
func TestDeploymentRunByARollout(t *testing.T) {
	ctx := context.Background()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "uid-d", ResourceVersion: "3"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}}}}
	ro := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "web-ro", "namespace": "ns"},
		"spec":     map[string]any{"workloadRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
	}}
	lists := map[schema.GroupVersionResource]string{}
	for _, k := range workload.Kinds() {
		if !k.BuiltIn() {
			lists[k.GroupVersionResource()] = k.Kind + "List"
		}
	}
	kube := fake.NewSimpleClientset(token("app-token", "app"), d)
	serveCustomKinds(kube)
	c := workload.Clients{Kube: kube, Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, ro)}
	for _, fo := range []FindOptions{{Namespace: "ns"}, {Namespace: "ns", Refs: []string{"deploy/web"}}} {
		plans, err := Find(ctx, c, fo, Options{})
		if err != nil || len(plans) != 1 || plans[0].Name != "web" {
			t.Fatalf("%+v: plans %+v, %v", fo, plans, err)
		}
		if w := strings.Join(plans[0].Warnings, "; "); !strings.Contains(w, "rollout.argoproj.io/web-ro runs this template too") {
			t.Errorf("%+v: warnings %q", fo, w)
		}
	}
}

// serveCustomKinds makes the fake's discovery serve every kind of other
// APIs in the table.
func serveCustomKinds(c *fake.Clientset) {
	for _, k := range workload.Kinds() {
		if !k.BuiltIn() {
			c.Resources = append(c.Resources, &metav1.APIResourceList{GroupVersion: k.APIVersion(),
				APIResources: []metav1.APIResource{{Name: k.Resource, Kind: k.Kind, Namespaced: k.Namespaced(), Verbs: metav1.Verbs{"get", "list", "patch"}}}})
		}
	}
}

// TestCustomKindsServedAndForbidden: kinds the cluster does not serve are
// not asked for; a served kind the user may not list is a warning, and
// the built-in workloads are still planned.
func TestCustomKindsServedAndForbidden(t *testing.T) {
	ctx := context.Background()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}}}}
	for _, served := range []bool{false, true} {
		kube := fake.NewSimpleClientset(token("app-token", "app"), d)
		if served {
			serveCustomKinds(kube)
		}
		lists := map[schema.GroupVersionResource]string{}
		for _, k := range workload.Kinds() {
			lists[k.GroupVersionResource()] = k.Kind + "List"
		}
		dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists)
		dyn.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", errors.New("no"))
		})
		var warned []string
		plans, err := Find(ctx, workload.Clients{Kube: kube, Dynamic: dyn}, FindOptions{Namespace: "ns", Warn: func(m string) { warned = append(warned, m) }}, Options{})
		if err != nil || len(plans) != 1 || plans[0].Name != "web" {
			t.Fatalf("served %v: plans %+v, %v", served, plans, err)
		}
		if !served && (len(dyn.Actions()) != 0 || len(warned) != 0) {
			t.Errorf("not served: asked %v, warned %v", dyn.Actions(), warned)
		}
		if served && (len(warned) == 0 || !strings.Contains(strings.Join(warned, "\n"), "rollouts.argoproj.io")) {
			t.Errorf("served and forbidden: warned %v", warned)
		}
	}
}
