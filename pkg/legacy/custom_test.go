package legacy

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

var rollouts = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// rolloutAPI is what workload.Discover finds for Argo Rollouts (its CRD's
// pod spec is at .spec.template.spec; pkg/workload's tests prove that on
// the published CRD).
func rolloutAPI() workload.API {
	p := workload.Path{{Kind: workload.FieldStep, Field: "spec"}, {Kind: workload.FieldStep, Field: "template"}, {Kind: workload.FieldStep, Field: "spec"}}
	return workload.API{GroupVersionResource: rollouts, Kind: "Rollout", Namespaced: true, Paths: []workload.Path{p}}
}

func rollout(ns, name string, volumes any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{"replicas": int64(0), "template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": "app"}},
			"volumes":    volumes,
		}}},
	}}
	return u
}

func dynamicWith(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{rollouts: "RolloutList"}, objs...)
}

// A Rollout at 0 replicas whose template mounts a legacy token Secret is
// its reader, named as kubectl names the type; the volumes come from the
// object's data (Argo leaves them untyped in its schema).
func TestCustomWorkloadReadsItsSecrets(t *testing.T) {
	dyn := dynamicWith(rollout("app", "web", []any{map[string]any{"name": "t", "secret": map[string]any{"secretName": "app-token"}}}))
	r := &refs{readers: map[string][]Reader{}, owners: map[string]string{}}
	if err := listCustom(context.Background(), dyn, rolloutAPI(), "app", 500, r); err != nil {
		t.Fatal(err)
	}
	got := r.readers["app/app-token"]
	if len(got) != 1 || got[0].String() != "rollout.argoproj.io/web (volume)" {
		t.Errorf("readers %v, want rollout.argoproj.io/web (volume)", got)
	}
}

// An object whose pod spec cannot be read makes its namespace's readers
// unknown, never "nothing reads"; the other namespaces' Secrets are judged
// on, and a cluster-scoped one makes every namespace's unknown.
func TestCustomWorkloadThatCannotBeReadMakesItsNamespaceUnknown(t *testing.T) {
	dyn := dynamicWith(rollout("app", "odd", "not a list"), rollout("other", "web", []any{map[string]any{"name": "t", "secret": map[string]any{"secretName": "other-token"}}}))
	r := &refs{readers: map[string][]Reader{}, owners: map[string]string{}}
	if err := listCustom(context.Background(), dyn, rolloutAPI(), "", 500, r); err != nil {
		t.Fatal(err)
	}
	sc := &scope{readers: map[string][]Reader{}, accounts: map[string]account{}}
	info := &ScanInfo{}
	if err := sc.merge(context.Background(), []*refs{r}, "", info); err != nil {
		t.Fatal(err)
	}
	f := newFinding(secret("app", "app-token", "1"))
	sc.describe(f)
	if !strings.Contains(f.readersUnknown, "rollout.argoproj.io app/odd") || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "namespace app") {
		t.Errorf("app: readers unknown %q, warnings %v", f.readersUnknown, info.Warnings)
	}
	g := newFinding(secret("other", "other-token", "1"))
	sc.describe(g)
	if g.readersUnknown != "" || len(g.Readers) != 1 {
		t.Errorf("other: readers unknown %q, readers %v", g.readersUnknown, g.Readers)
	}
	// Cluster-scoped: every namespace.
	r = &refs{readers: map[string][]Reader{}, owners: map[string]string{}}
	r.cannotRead("", "thing.example.com global: bad")
	sc = &scope{readers: map[string][]Reader{}, accounts: map[string]account{}}
	if err := sc.merge(context.Background(), []*refs{r}, "", &ScanInfo{}); err != nil {
		t.Fatal(err)
	}
	sc.describe(g)
	if !strings.Contains(g.readersUnknown, "global") {
		t.Errorf("cluster-scoped: readers unknown %q", g.readersUnknown)
	}
}

// A cluster-scoped object's pod spec names a Secret whose namespace its
// shape cannot tell: a Secret of that name is read in every namespace.
func TestClusterScopedReaderReadsEveryNamespace(t *testing.T) {
	r := &refs{readers: map[string][]Reader{}, owners: map[string]string{}}
	o := rollout("", "global", nil)
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "shared-token"}}}}}
	customTemplate(r, "thing.example.com", o, spec, false)
	sc := &scope{readers: r.readers, accounts: map[string]account{}}
	f := newFinding(secret("team-a", "shared-token", "1"))
	sc.describe(f)
	if len(f.Readers) != 1 || f.Readers[0].String() != "thing.example.com/global (volume)" {
		t.Errorf("readers %v", f.Readers)
	}
}

// Only a workload whose template names a Secret is kept as an owner: a
// ReplicaSet that reads nothing costs no entry; one that reads keeps the
// chain its pods are folded along.
func TestOwnerKeptOnlyForReadingTemplates(t *testing.T) {
	r := &refs{readers: map[string][]Reader{}, owners: map[string]string{}}
	owned := func(name string) metav1.Object {
		o := &unstructured.Unstructured{}
		o.SetNamespace("ns")
		o.SetName(name)
		o.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Controller: ptrTrue()}})
		return o
	}
	template(r, "replicaset", owned("quiet"), &corev1.PodSpec{}, false)
	template(r, "replicaset", owned("reads"), &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tok"}}}}}, false)
	if _, ok := r.owners["ns/replicaset/quiet"]; ok || r.owners["ns/replicaset/reads"] != "deployment/web" || len(r.owners) != 1 {
		t.Errorf("owners %v", r.owners)
	}
}

func ptrTrue() *bool { b := true; return &b }
