package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/spec3"
)

func pathStrings(paths []Path) []string {
	out := []string{}
	for _, p := range paths {
		out = append(out, p.String())
	}
	return out
}

// TestPodSpecPathsPublishedCRDs finds the pod specs in the projects' own
// CRDs, at any depth, inside arrays and maps, and none in CRDs without.
func TestPodSpecPathsPublishedCRDs(t *testing.T) {
	for _, tc := range []struct {
		crd  crdFile
		kind string
		want []string
	}{
		// RolloutSpec.Template is a PodTemplateSpec (argo-rollouts
		// pkg/apis/rollouts/v1alpha1/types.go), its volumes left untyped.
		{rolloutCRD, "Rollout", []string{".spec.template.spec"}},
		// An Experiment's templates are a list of ReplicaSet templates.
		{experimentCRD, "Experiment", []string{".spec.templates[*].template.spec"}},
		// A Service's template is a RevisionTemplateSpec, whose spec is a
		// RevisionSpec.
		{knativeServiceCRD, "Service", []string{".spec.template.spec"}},
		// RevisionSpec embeds corev1.PodSpec inline (knative.dev/serving
		// pkg/apis/serving/v1/revision_types.go): a Revision's spec IS a
		// pod spec's shape.
		{knativeRevCRD, "Revision", []string{".spec"}},
		{knativeRouteCRD, "Route", []string{}},
		// ScaledJob's jobTargetRef is a batchv1.JobSpec (kedacore/keda
		// apis/keda/v1alpha1/scaledjob_types.go).
		{scaledJobCRD, "ScaledJob", []string{".spec.jobTargetRef.template.spec"}},
		{scaledObjectCRD, "ScaledObject", []string{}},
		// TFJob's tfReplicaSpecs is a map[ReplicaType]*ReplicaSpec
		// (training-operator pkg/apis/kubeflow.org/v1/tensorflow_types.go):
		// additionalProperties.
		{tfJobCRD, "TFJob", []string{".spec.tfReplicaSpecs[*].template.spec"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c, s := readCRD(t, tc.crd)
			if c.Spec.Names.Kind != tc.kind {
				t.Fatalf("%s defines %s", tc.crd.file, c.Spec.Names.Kind)
			}
			if diff := cmp.Diff(tc.want, pathStrings(PodSpecPaths(s))); diff != "" {
				t.Errorf("%s@%s %s: paths (-want +got):\n%s", tc.crd.module, tc.crd.version, tc.crd.file, diff)
			}
		})
	}
}

// TestPodSpecPathsSkipsStatus: a pod spec in an object's status is what a
// controller observed, not a reader.
func TestPodSpecPathsSkipsStatus(t *testing.T) {
	_, s := readCRD(t, rolloutCRD)
	// The Rollout's own spec, placed under status as well.
	s.Properties["status"] = s.Properties["spec"]
	if diff := cmp.Diff([]string{".spec.template.spec"}, pathStrings(PodSpecPaths(s))); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

// openAPIDocs reads Kubernetes' published /openapi/v3 documents, by file
// name (apis__apps__v1_openapi.json), group-version documents only.
func openAPIDocs(t *testing.T) map[schema.GroupVersion]*spec3.OpenAPI {
	t.Helper()
	dir := filepath.Join(moduleDir(t, modcache.Kubernetes, modcache.KubernetesVersion), "api", "openapi-spec", "v3")
	files, err := filepath.Glob(filepath.Join(dir, "*_openapi.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OpenAPI documents in %s: %v", dir, err)
	}
	docs := map[schema.GroupVersion]*spec3.OpenAPI{}
	for _, f := range files {
		// api__v1_openapi.json, apis__apps__v1_openapi.json; apis_ and
		// apis__apps_ (group lists) have no version.
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), "_openapi.json"), "__")
		var gv schema.GroupVersion
		switch {
		case len(parts) == 2 && parts[0] == "api":
			gv = schema.GroupVersion{Version: parts[1]}
		case len(parts) == 3 && parts[0] == "apis":
			gv = schema.GroupVersion{Group: parts[1], Version: parts[2]}
		default:
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc := &spec3.OpenAPI{}
		if err := json.Unmarshal(b, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		docs[gv] = doc
	}
	return docs
}

// TestPodSpecPathsInKubernetesOpenAPI walks the apiserver's own documents,
// where a pod template is a $ref (wrapped in allOf with its default and
// description, as kube-openapi writes one) and JSONSchemaProps refers to
// itself.
func TestPodSpecPathsInKubernetesOpenAPI(t *testing.T) {
	docs := openAPIDocs(t)
	for _, tc := range []struct {
		gvk  schema.GroupVersionKind
		want []string
	}{
		{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, []string{".spec.template.spec"}},
		{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, []string{".spec.jobTemplate.spec.template.spec"}},
		{schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, []string{".spec"}},
		{schema.GroupVersionKind{Version: "v1", Kind: "PodTemplate"}, []string{".template.spec"}},
		{schema.GroupVersionKind{Version: "v1", Kind: "PodList"}, []string{".items[*].spec"}},
		// JSONSchemaProps' properties, items, allOf... are
		// JSONSchemaProps: the walk ends, and finds none.
		{schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, []string{}},
	} {
		doc := docs[tc.gvk.GroupVersion()]
		if doc == nil {
			t.Fatalf("no document for %s", tc.gvk.GroupVersion())
		}
		s := SchemaOf(doc.Components.Schemas, tc.gvk)
		if s == nil {
			t.Fatalf("no schema for %s", tc.gvk)
		}
		if diff := cmp.Diff(tc.want, pathStrings(PodSpecPathsIn(s, doc.Components.Schemas))); diff != "" {
			t.Errorf("%s: paths (-want +got):\n%s", tc.gvk, diff)
		}
	}
}

// TestBuiltinGroupsHoldNoPodSpecs proves what Discover skips: in every
// group Kubernetes serves, only the table's groups have kinds with pod
// specs, and Discover asks for none of the built-in groups.
func TestBuiltinGroupsHoldNoPodSpecs(t *testing.T) {
	tableGroups := map[string]bool{}
	for _, k := range Kinds() {
		tableGroups[k.Group] = true
	}
	for gv, doc := range openAPIDocs(t) {
		if MayHoldPodSpecs(gv.Group) {
			t.Errorf("Discover would fetch the built-in group-version %s", gv)
		}
		if tableGroups[gv.Group] {
			continue
		}
		for name, s := range doc.Components.Schemas {
			if _, ok := s.Extensions[gvkExtension]; !ok {
				continue
			}
			if p := PodSpecPathsIn(s, doc.Components.Schemas); len(p) > 0 {
				t.Errorf("%s: %s holds pod specs at %v", gv, name, pathStrings(p))
			}
		}
	}
}

type visited struct{ path, secret, via string }

func secretsAt(t *testing.T, obj map[string]any, paths []Path) []visited {
	t.Helper()
	got := []visited{}
	for _, p := range paths {
		if err := PodSpecs(obj, p, func(path string, ps *corev1.PodSpec) error {
			VisitSecretNames(ps, func(name, via string) { got = append(got, visited{path, name, via}) })
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// TestPodSpecsUntypedVolumes: the Rollout CRD leaves a pod template's
// volumes x-kubernetes-preserve-unknown-fields (rollout-crd.yaml,
// spec.template.spec.volumes); the Secrets a Rollout's pods mount are in
// its data all the same.
func TestPodSpecsUntypedVolumes(t *testing.T) {
	_, s := readCRD(t, rolloutCRD)
	paths := PodSpecPaths(s)
	obj := readExample(t, crdFile{modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "examples/rollout-secret.yaml"})
	ps := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	ps["volumes"] = []any{map[string]any{"name": "token", "secret": map[string]any{"secretName": "legacy-token"}}}
	ps["imagePullSecrets"] = []any{map[string]any{"name": "registry"}}
	want := []visited{{".spec.template.spec", "registry", "imagePullSecrets"}, {".spec.template.spec", "legacy-token", "volume"}}
	if diff := cmp.Diff(want, secretsAt(t, obj, paths), cmp.AllowUnexported(visited{})); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
}

// TestPodSpecsKnativeService reads a Knative Service's template, whose
// spec is a RevisionSpec: a PodSpec inline with Knative's own fields
// (containerConcurrency, timeoutSeconds), which the conversion leaves
// out.
func TestPodSpecsKnativeService(t *testing.T) {
	_, s := readCRD(t, knativeServiceCRD)
	obj := readExample(t, crdFile{modcache.KnativeServing, modcache.KnativeServingVersion, "test/test_images/volumes/service-empty-dir.yaml"})
	ps := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	ps["containerConcurrency"] = int64(10)
	ps["timeoutSeconds"] = int64(300)
	ps["volumes"] = append(ps["volumes"].([]any), map[string]any{"name": "token", "projected": map[string]any{
		"sources": []any{map[string]any{"secret": map[string]any{"name": "legacy-token"}}}}})
	want := []visited{{".spec.template.spec", "legacy-token", "projected"}}
	if diff := cmp.Diff(want, secretsAt(t, obj, PodSpecPaths(s)), cmp.AllowUnexported(visited{})); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
}

// TestPodSpecsInMapsAndArrays walks every value of a map (a TFJob's
// replica specs) and every item of an array (an Experiment's templates),
// naming each in the path.
func TestPodSpecsInMapsAndArrays(t *testing.T) {
	_, s := readCRD(t, tfJobCRD)
	tf := readExample(t, crdFile{modcache.KubeflowTraining, modcache.KubeflowTrainingVersion, "examples/tensorflow/simple.yaml"})
	replicas := tf["spec"].(map[string]any)["tfReplicaSpecs"].(map[string]any)
	replicas["PS"] = map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "ps", "image": "tf", "envFrom": []any{map[string]any{"secretRef": map[string]any{"name": "ps-creds"}}}}}}}}
	worker := replicas["Worker"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	worker["imagePullSecrets"] = []any{map[string]any{"name": "worker-pull"}}
	want := []visited{{".spec.tfReplicaSpecs.PS.template.spec", "ps-creds", "envFrom"}, {".spec.tfReplicaSpecs.Worker.template.spec", "worker-pull", "imagePullSecrets"}}
	if diff := cmp.Diff(want, secretsAt(t, tf, PodSpecPaths(s)), cmp.AllowUnexported(visited{})); diff != "" {
		t.Errorf("TFJob secrets (-want +got):\n%s", diff)
	}

	_, s = readCRD(t, experimentCRD)
	ex := readExample(t, crdFile{modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "examples/experiment-with-analysis.yaml"})
	var got []string
	for _, p := range PodSpecPaths(s) {
		if err := PodSpecs(ex, p, func(path string, ps *corev1.PodSpec) error {
			got = append(got, path+" "+ps.Containers[0].Image)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	want2 := []string{".spec.templates[0].template.spec argoproj/rollouts-demo:purple", ".spec.templates[1].template.spec argoproj/rollouts-demo:orange"}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("Experiment pod specs (-want +got):\n%s", diff)
	}
}

// TestPodSpecsErrors: data that is not a pod spec where the schema says
// one is makes the object's readers unknown; a template left out holds
// none; fn's error stops the walk.
func TestPodSpecsErrors(t *testing.T) {
	_, s := readCRD(t, rolloutCRD)
	paths := PodSpecPaths(s)
	obj := readExample(t, crdFile{modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "examples/rollout-secret.yaml"})
	ps := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)

	ps["volumes"] = "token" // untyped in the schema: anything is stored
	err := PodSpecs(obj, paths[0], func(string, *corev1.PodSpec) error { return nil })
	if err == nil || !strings.Contains(err.Error(), ".spec.template.spec: not a pod spec") {
		t.Errorf("volumes a string: err %v, want not a pod spec", err)
	}

	delete(obj["spec"].(map[string]any), "template") // a workloadRef Rollout
	calls := 0
	if err := PodSpecs(obj, paths[0], func(string, *corev1.PodSpec) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("no template: %d calls, err %v", calls, err)
	}

	obj["spec"].(map[string]any)["template"] = []any{"x"}
	if err := PodSpecs(obj, paths[0], func(string, *corev1.PodSpec) error { return nil }); err == nil {
		t.Error("template an array: no error")
	}

	stop := errors.New("stop")
	obj = readExample(t, crdFile{modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "examples/experiment-with-analysis.yaml"})
	_, s = readCRD(t, experimentCRD)
	calls = 0
	if err := PodSpecs(obj, PodSpecPaths(s)[0], func(string, *corev1.PodSpec) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("fn's error: %d calls, err %v", calls, err)
	}
}

// TestSearchPodSpecs finds pod specs in data by their shape: in an Argo
// Workflow, whose CRD says nothing of its spec, a containerSet template
// (argo-workflows pkg/apis/workflow/v1alpha1/container_set_template_types.go:
// a list of containers), and anywhere the typed APIs have them; never in
// status.
func TestSearchPodSpecs(t *testing.T) {
	search := func(obj map[string]any) []string {
		got := []string{}
		if err := SearchPodSpecs(obj, func(path string, ps *corev1.PodSpec) error {
			got = append(got, fmt.Sprintf("%s %d", path, len(ps.Containers)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	wf := readExample(t, crdFile{modcache.ArgoWorkflows, modcache.ArgoWorkflowsVersion, "examples/container-set-template/workspace-workflow.yaml"})
	if diff := cmp.Diff([]string{".spec.templates[0].containerSet 2"}, search(wf)); diff != "" {
		t.Errorf("Workflow (-want +got):\n%s", diff)
	}

	tf := readExample(t, crdFile{modcache.KubeflowTraining, modcache.KubeflowTrainingVersion, "examples/tensorflow/simple.yaml"})
	tf["status"] = map[string]any{"observed": tf["spec"]}
	if diff := cmp.Diff([]string{".spec.tfReplicaSpecs.Worker.template.spec 1"}, search(tf)); diff != "" {
		t.Errorf("TFJob (-want +got):\n%s", diff)
	}

	// Not the shape: a container without an image, an empty list.
	for _, obj := range []map[string]any{
		{"spec": map[string]any{"containers": []any{map[string]any{"name": "a"}}}},
		{"spec": map[string]any{"containers": []any{}}},
		{"spec": map[string]any{"containers": []any{map[string]any{"image": "a"}, "b"}}},
	} {
		if got := search(obj); len(got) != 0 {
			t.Errorf("%v: found %v", obj, got)
		}
	}
}

// TestPathString prints paths as JSONPath.
func TestPathString(t *testing.T) {
	p := Path{{Field: "spec"}, {Field: "tfReplicaSpecs"}, {Kind: ValuesStep}, {Field: "a.b"}, {Kind: ItemsStep}, {Field: "it's"}}
	if got, want := p.String(), `.spec.tfReplicaSpecs[*]['a.b'][*]['it\'s']`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
