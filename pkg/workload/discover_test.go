package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/openapi"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// fakeServer answers discovery and /openapi/v3 as an apiserver with the
// given resources and documents, and counts the documents fetched.
type fakeServer struct {
	*fakediscovery.FakeDiscovery
	lists []*metav1.APIResourceList
	docs  map[string][]byte // by /openapi/v3 path: "apis/argoproj.io/v1alpha1"

	mu              sync.Mutex
	fetched         []string
	running, maxRun int
}

func (f *fakeServer) ServerPreferredResourcesWithContext(context.Context) ([]*metav1.APIResourceList, error) {
	return f.lists, nil
}

func (f *fakeServer) ServerPreferredResources() ([]*metav1.APIResourceList, error) {
	return f.lists, nil
}

func (f *fakeServer) OpenAPIV3WithContext(context.Context) openapi.ClientWithContext { return f }

func (f *fakeServer) OpenAPIV3() openapi.Client { panic("Discover asks with a context") }

func (f *fakeServer) PathsWithContext(context.Context) (map[string]openapi.GroupVersionWithContext, error) {
	paths := map[string]openapi.GroupVersionWithContext{}
	for p := range f.docs {
		paths[p] = fakeGV{f, p}
	}
	return paths, nil
}

type fakeGV struct {
	f    *fakeServer
	path string
}

func (g fakeGV) ServerRelativeURL() string { return "/openapi/v3/" + g.path }

func (g fakeGV) SchemaWithContext(ctx context.Context, contentType string) ([]byte, error) {
	f := g.f
	f.mu.Lock()
	f.fetched = append(f.fetched, g.path)
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	f.mu.Unlock()
	// Long enough for every fetch let loose to overlap.
	time.Sleep(20 * time.Millisecond)
	f.mu.Lock()
	f.running--
	f.mu.Unlock()
	if contentType != "application/json" {
		return nil, fmt.Errorf("content type %s", contentType)
	}
	return f.docs[g.path], nil
}

var _ discovery.DiscoveryInterface = &fakeServer{}

// crdServer serves the published CRDs as an apiserver does: each in
// discovery (its storage version, listable, with a status subresource)
// and in its group-version's /openapi/v3 document, where
// apiextensions-apiserver pkg/controller/openapi/builder puts a CRD's
// openAPIV3Schema under a name of the group reversed, the version and the
// kind (io.argoproj.v1alpha1.Rollout), marked with
// x-kubernetes-group-version-kind.
func crdServer(t *testing.T, files ...crdFile) *fakeServer {
	t.Helper()
	f := &fakeServer{FakeDiscovery: &fakediscovery.FakeDiscovery{}, docs: map[string][]byte{}}
	docs := map[schema.GroupVersion]*spec3.OpenAPI{}
	lists := map[schema.GroupVersion]*metav1.APIResourceList{}
	var order []schema.GroupVersion
	for _, file := range files {
		c, s := readCRD(t, file)
		var version string
		for _, v := range c.Spec.Versions {
			if v.Storage {
				version = v.Name
			}
		}
		gv := schema.GroupVersion{Group: c.Spec.Group, Version: version}
		if docs[gv] == nil {
			docs[gv] = &spec3.OpenAPI{Version: "3.0.0", Components: &spec3.Components{Schemas: map[string]*spec.Schema{}}}
			lists[gv] = &metav1.APIResourceList{GroupVersion: gv.String()}
			order = append(order, gv)
		}
		group := strings.Split(gv.Group, ".")
		slices.Reverse(group)
		s.AddExtension(gvkExtension, []any{map[string]any{"group": gv.Group, "version": gv.Version, "kind": c.Spec.Names.Kind}})
		docs[gv].Components.Schemas[strings.Join(group, ".")+"."+gv.Version+"."+c.Spec.Names.Kind] = s
		namespaced := c.Spec.Scope == "Namespaced"
		verbs := metav1.Verbs{"delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"}
		lists[gv].APIResources = append(lists[gv].APIResources,
			metav1.APIResource{Name: c.Spec.Names.Plural, Namespaced: namespaced, Kind: c.Spec.Names.Kind, Verbs: verbs},
			metav1.APIResource{Name: c.Spec.Names.Plural + "/status", Namespaced: namespaced, Kind: c.Spec.Names.Kind, Verbs: metav1.Verbs{"get", "patch", "update"}})
	}
	for _, gv := range order {
		b, err := json.Marshal(docs[gv])
		if err != nil {
			t.Fatal(err)
		}
		f.docs[openAPIPath(gv)] = b
		f.lists = append(f.lists, lists[gv])
	}
	return f
}

type found struct {
	GVR        string
	Kind       string
	Namespaced bool
	Paths      []string
	Opaque     bool
}

func foundOf(apis []API) []found {
	out := []found{}
	for _, a := range apis {
		out = append(out, found{a.GroupVersionResource.String(), a.Kind, a.Namespaced, pathStrings(a.Paths), a.Opaque})
	}
	return out
}

// TestDiscover lists, from discovery and /openapi/v3, the served APIs
// whose objects hold pod specs, and fetches only the documents of groups
// that may: never the built-in groups', a few at a time.
func TestDiscover(t *testing.T) {
	f := crdServer(t, rolloutCRD, experimentCRD, workflowCRD, knativeServiceCRD, knativeRevCRD, knativeRouteCRD,
		crdFile{modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/podautoscaler.yaml"},
		scaledJobCRD, scaledObjectCRD,
		crdFile{modcache.KEDA, modcache.KEDAVersion, "config/crd/bases/eventing.keda.sh_cloudeventsources.yaml"},
		tfJobCRD)
	// The built-in groups, with their real documents: apps (the table's)
	// and rbac (no pod spec).
	for gv, doc := range openAPIDocs(t) {
		if gv.Group != "apps" && gv.Group != "rbac.authorization.k8s.io" {
			continue
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		f.docs[openAPIPath(gv)] = b
	}
	f.lists = append(f.lists,
		&metav1.APIResourceList{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: metav1.Verbs{"get", "list"}}}},
		&metav1.APIResourceList{GroupVersion: "rbac.authorization.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "roles", Namespaced: true, Kind: "Role", Verbs: metav1.Verbs{"get", "list"}}}},
		// Not listable: asked for by nothing.
		&metav1.APIResourceList{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "reviews", Kind: "Review", Verbs: metav1.Verbs{"create"}}}},
	)

	apis, err := Discover(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	want := []found{
		{"argoproj.io/v1alpha1, Resource=rollouts", "Rollout", true, []string{".spec.template.spec"}, false},
		{"argoproj.io/v1alpha1, Resource=experiments", "Experiment", true, []string{".spec.templates[*].template.spec"}, false},
		{"argoproj.io/v1alpha1, Resource=workflows", "Workflow", true, []string{}, true},
		{"keda.sh/v1alpha1, Resource=scaledjobs", "ScaledJob", true, []string{".spec.jobTargetRef.template.spec"}, false},
		{"kubeflow.org/v1, Resource=tfjobs", "TFJob", true, []string{".spec.tfReplicaSpecs[*].template.spec"}, false},
		{"serving.knative.dev/v1, Resource=services", "Service", true, []string{".spec.template.spec"}, false},
		{"serving.knative.dev/v1, Resource=revisions", "Revision", true, []string{".spec"}, false},
	}
	if diff := cmp.Diff(want, foundOf(apis)); diff != "" {
		t.Errorf("APIs (-want +got):\n%s", diff)
	}
	slices.Sort(f.fetched)
	wantFetched := []string{"apis/argoproj.io/v1alpha1", "apis/autoscaling.internal.knative.dev/v1alpha1", "apis/eventing.keda.sh/v1alpha1",
		"apis/keda.sh/v1alpha1", "apis/kubeflow.org/v1", "apis/serving.knative.dev/v1"}
	if diff := cmp.Diff(wantFetched, f.fetched); diff != "" {
		t.Errorf("documents fetched (-want +got):\n%s", diff)
	}
	if f.maxRun > discoverWorkers || f.maxRun < 2 {
		t.Errorf("%d documents fetched at once, want 2 to %d", f.maxRun, discoverWorkers)
	}
}

// TestDiscoverPartial: a group-version whose document cannot be read is
// named in the error; the others' APIs are still returned.
func TestDiscoverPartial(t *testing.T) {
	f := crdServer(t, rolloutCRD, tfJobCRD)
	delete(f.docs, "apis/kubeflow.org/v1")
	apis, err := Discover(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "kubeflow.org/v1") {
		t.Errorf("err %v, want one naming kubeflow.org/v1", err)
	}
	if diff := cmp.Diff([]found{{"argoproj.io/v1alpha1, Resource=rollouts", "Rollout", true, []string{".spec.template.spec"}, false}}, foundOf(apis)); diff != "" {
		t.Errorf("APIs (-want +got):\n%s", diff)
	}
}

// TestOpaque: an object whose spec keeps unknown fields and declares
// none (Argo Workflows' minimal CRDs) is Opaque; one whose spec declares
// fields is read by its paths.
func TestOpaque(t *testing.T) {
	_, wf := readCRD(t, workflowCRD)
	_, ro := readCRD(t, rolloutCRD)
	if !opaque(wf, nil) {
		t.Error("Workflow: not opaque")
	}
	if opaque(ro, nil) {
		t.Error("Rollout: opaque")
	}
	// The Workflow's spec, still x-kubernetes-preserve-unknown-fields,
	// given the Rollout's spec fields.
	sp := wf.Properties["spec"]
	sp.Properties = ro.Properties["spec"].Properties
	wf.Properties["spec"] = sp
	if opaque(wf, nil) {
		t.Error("Workflow with spec fields: opaque")
	}
}
