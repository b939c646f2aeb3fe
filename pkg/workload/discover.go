package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/openapi"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// API is a served resource, outside the table's kinds, whose objects hold
// pod specs: at Paths (PodSpecs reads them), or anywhere when Opaque
// (SearchPodSpecs finds them).
type API struct {
	schema.GroupVersionResource
	Kind       string
	Namespaced bool
	// Paths are where its schema has pod specs (PodSpecPathsIn).
	Paths []Path
	// Opaque is an API whose spec is x-kubernetes-preserve-unknown-fields
	// with no properties (Argo Workflows' CRDs): its schema cannot say
	// where pod specs are, so its objects' data must be searched.
	Opaque bool
}

// discoverWorkers bounds the group-versions' schemas fetched at once.
const discoverWorkers = 4

// Discover lists the APIs the server serves, other than the table's
// groups, whose objects hold pod specs, from the server's discovery
// (ServerPreferredResources: the preferred version of each group) and the
// schemas it publishes in /openapi/v3. Only listable resources (the list
// verb) count, subresources not.
//
// It asks for no schema of a group that holds no pod spec: the table's
// groups (core, apps, batch) and every other group built into Kubernetes
// (client-go's scheme; none has a pod spec, checked by the tests against
// k8s.io/kubernetes' published OpenAPI). The others' preferred
// group-versions are fetched a few at a time.
//
// With an error, the APIs it could read are returned with it: the error
// names the groups whose resources or schemas it could not read, whose
// readers are then unknown.
func Discover(ctx context.Context, d discovery.DiscoveryInterface) ([]API, error) {
	dc := discovery.ToDiscoveryInterfaceWithContext(d)
	var errs []error
	lists, err := dc.ServerPreferredResourcesWithContext(ctx)
	if err != nil {
		if !discovery.IsGroupDiscoveryFailedError(err) {
			return nil, err
		}
		errs = append(errs, err)
	}
	wanted := map[schema.GroupVersion][]metav1.APIResource{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !MayHoldPodSpecs(gv.Group) {
			continue
		}
		for _, r := range l.APIResources {
			if !strings.Contains(r.Name, "/") && hasVerb(r.Verbs, "list") {
				wanted[gv] = append(wanted[gv], r)
			}
		}
	}
	if len(wanted) == 0 {
		return nil, errors.Join(errs...)
	}
	paths, err := dc.OpenAPIV3WithContext(ctx).PathsWithContext(ctx)
	if err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("/openapi/v3: %w", err))...)
	}

	gvs := make([]schema.GroupVersion, 0, len(wanted))
	for gv := range wanted {
		gvs = append(gvs, gv)
	}
	sort.Slice(gvs, func(i, j int) bool { return gvs[i].String() < gvs[j].String() })
	found := make([][]API, len(gvs))
	failed := make([]error, len(gvs))
	sem := make(chan struct{}, discoverWorkers)
	var wg sync.WaitGroup
	for i, gv := range gvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				failed[i] = fmt.Errorf("%s: %w", gv, ctx.Err())
				return
			}
			found[i], failed[i] = apisOf(ctx, paths, gv, wanted[gv])
		}()
	}
	wg.Wait()
	var apis []API
	for i := range gvs {
		apis = append(apis, found[i]...)
		if failed[i] != nil {
			errs = append(errs, failed[i])
		}
	}
	return apis, errors.Join(errs...)
}

// apisOf reads the schema of gv and returns its resources that hold pod
// specs.
func apisOf(ctx context.Context, paths map[string]openapi.GroupVersionWithContext, gv schema.GroupVersion, resources []metav1.APIResource) ([]API, error) {
	p, ok := paths[openAPIPath(gv)]
	if !ok {
		return nil, fmt.Errorf("%s: not in /openapi/v3", gv)
	}
	b, err := p.SchemaWithContext(ctx, "application/json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gv, err)
	}
	doc := &spec3.OpenAPI{}
	if err := json.Unmarshal(b, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", gv, err)
	}
	return APIsIn(doc, gv, resources), nil
}

// APIsIn returns those of gv's resources whose schema in doc, the
// group-version's /openapi/v3 document, holds pod specs or is Opaque, in
// resources' order. A resource whose kind has no schema there is left
// out.
func APIsIn(doc *spec3.OpenAPI, gv schema.GroupVersion, resources []metav1.APIResource) []API {
	var components map[string]*spec.Schema
	if doc.Components != nil {
		components = doc.Components.Schemas
	}
	var apis []API
	for _, r := range resources {
		s := SchemaOf(components, gv.WithKind(r.Kind))
		if s == nil {
			continue
		}
		a := API{GroupVersionResource: gv.WithResource(r.Name), Kind: r.Kind, Namespaced: r.Namespaced,
			Paths: PodSpecPathsIn(s, components), Opaque: opaque(s, components)}
		if len(a.Paths) > 0 || a.Opaque {
			apis = append(apis, a)
		}
	}
	return apis
}

// gvkExtension names the kinds a schema is the object of, as the
// apiserver marks them in /openapi/v3 (k8s.io/apiserver
// pkg/endpoints/openapi, and apiextensions-apiserver's CRD builder).
const gvkExtension = "x-kubernetes-group-version-kind"

// SchemaOf is the schema among components of the object of kind gvk, or
// nil.
func SchemaOf(components map[string]*spec.Schema, gvk schema.GroupVersionKind) *spec.Schema {
	for _, name := range sortedKeys(components) {
		s := components[name]
		if s == nil {
			continue
		}
		kinds, _ := s.Extensions[gvkExtension].([]any)
		for _, k := range kinds {
			k, _ := k.(map[string]any)
			if k["group"] == gvk.Group && k["version"] == gvk.Version && k["kind"] == gvk.Kind {
				return s
			}
		}
	}
	return nil
}

// opaque says whether the object of schema s has a spec that is
// x-kubernetes-preserve-unknown-fields with no properties.
func opaque(s *spec.Schema, components map[string]*spec.Schema) bool {
	w := &walker{components: components}
	sp := w.property(s, "spec", map[string]bool{})
	if sp == nil {
		return false
	}
	preserve := false
	for _, e := range w.expand(sp, map[string]bool{}) {
		if len(e.Properties) > 0 {
			return false
		}
		if v, _ := e.Extensions["x-kubernetes-preserve-unknown-fields"].(bool); v {
			preserve = true
		}
	}
	return preserve
}

// openAPIPath is gv's key in /openapi/v3: "api/v1", "apis/GROUP/VERSION".
func openAPIPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func hasVerb(verbs metav1.Verbs, verb string) bool {
	for _, v := range verbs {
		if v == verb {
			return true
		}
	}
	return false
}

// builtinGroups are the groups built into Kubernetes: those of client-go's
// scheme, and those of kube-apiserver's two other servers, whose types
// client-go's scheme does not hold (k8s.io/apiextensions-apiserver's CRDs,
// k8s.io/kube-aggregator's APIServices).
var builtinGroups = sync.OnceValue(func() map[string]bool {
	groups := map[string]bool{"apiextensions.k8s.io": true, "apiregistration.k8s.io": true}
	for _, gv := range scheme.Scheme.PrioritizedVersionsAllGroups() {
		groups[gv.Group] = true
	}
	return groups
})

// MayHoldPodSpecs says whether group may have kinds with pod specs the
// typed LISTs of the table's built-in kinds do not read: any group but
// those built into Kubernetes, whose kinds with pod specs (in core, apps
// and batch) the table has. The groups of the table's other kinds are
// read through Discover too: the table says how to read them, not that
// the cluster serves them.
func MayHoldPodSpecs(group string) bool { return !builtinGroups()[group] }
