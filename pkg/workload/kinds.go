package workload

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Object is a workload object: typed (client-go's) for the built-in
// kinds, *unstructured.Unstructured for the others.
type Object interface {
	metav1.Object
	runtime.Object
}

// Clients are what the table reads and writes with: client-go's typed
// client for the built-in kinds, the dynamic client for the others.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Kind is one row of the table.
type Kind struct {
	// Kind, Group and Version name it as the API does.
	Kind, Group, Version string
	// Resource is its plural resource name.
	Resource string
	// Short are kubectl's short names ("deploy"; a CRD's shortNames).
	Short []string
	// TemplatePath is where the pod template is in the object, for a
	// merge patch; nil for a kind whose pod spec is not a template that
	// can be rewritten (a Pod, a Knative Revision, an Argo Workflow).
	TemplatePath []string
	// Immutable kinds cannot have their pod template changed: a Job's
	// (pkg/apis/batch/validation/validation.go, ValidateJobSpecUpdate:
	// "field is immutable" on spec.template unless suspended and never
	// started) and a Pod's spec (pkg/apis/core/validation/validation.go,
	// ValidatePodUpdate: volumes may not change).
	Immutable bool
	// Restartable kinds are those `kubectl rollout restart` restarts
	// (k8s.io/kubectl pkg/polymorphichelpers/objectrestarter.go,
	// defaultObjectRestarter: Deployment, DaemonSet, StatefulSet).
	Restartable bool
	// Owners are the kinds whose template an object of this kind follows
	// when one of them controls it (a Deployment's or an Argo Rollout's
	// ReplicaSets, a CronJob's or a KEDA ScaledJob's Jobs): switch
	// changes the owner instead. AnyOwner: any controller (a
	// controller's pods).
	Owners   []schema.GroupKind
	AnyOwner bool
	// Qualified kinds are named only with their group ("service.
	// serving.knative.dev") or their short names, never by the bare kind,
	// which kubectl takes for a core kind ("service").
	Qualified bool

	api api
	// rollout says what a template change does to the pods (RolloutOf).
	rollout func(Object) Rollout
	// status judges a rollout in progress (RolloutStatus); nil: this
	// tool cannot judge it.
	status func(Object) (string, bool, error)
	// history tells an object kept as rollout history (History).
	history func(Object) bool
	// runsTemplateOf names the workload whose pod template an object of
	// this kind runs instead of its own (RunsTemplateOf).
	runsTemplateOf func(Object) (schema.GroupKind, string)
	// podSpecs visits the pod specs of an object whose schema does not
	// say where they are (PodSpecsOf); nil: the schema's paths are read.
	podSpecs func(obj map[string]any, visit func(path string, spec *corev1.PodSpec) error) error
}

// api is how one kind is listed, read, patched and made from JSON.
type api struct {
	// typ is the typed object's Go type; nil for kinds read through the
	// dynamic client.
	typ reflect.Type
	// clusterScoped kinds have no namespace (ClusterWorkflowTemplate).
	clusterScoped bool
	new           func() Object
	// template is the pod template: in place for typed objects, a copy
	// for the others; nil when the object has none.
	template    func(Object) *corev1.PodTemplateSpec
	setTemplate func(Object, *corev1.PodTemplateSpec) error
	// raw is the template as the object holds it, for a restore that
	// puts it back byte for byte.
	raw   func(Object) any
	list  func(ctx context.Context, c Clients, ns string, lo metav1.ListOptions, each func(Object)) error
	get   func(ctx context.Context, c Clients, ns, name string) (Object, error)
	patch func(ctx context.Context, c Clients, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error)
}

// kinds is the table, in the order readers and plans are printed: the
// built-in kinds (builtin.go), then the others (custom.go).
// (Set in init: the entries' own rules look kinds up.)
var kinds []*Kind

func init() { kinds = append(append([]*Kind{}, builtinKinds...), customKinds...) }

// Kinds lists the table in print order.
func Kinds() []*Kind { return kinds }

// Namespaced reports a kind whose objects live in a namespace.
func (k *Kind) Namespaced() bool { return !k.api.clusterScoped }

// BuiltIn reports a kind of the built-in groups (core, apps, batch), read
// through the typed client.
func (k *Kind) BuiltIn() bool { return k.api.typ != nil }

// For returns the built-in kind named kind ("Deployment"), or nil.
func For(kind string) *Kind { return Lookup("", kind) }

// Lookup returns the kind of group and kind, or nil. An empty group also
// finds a kind of the built-in groups by its name alone: the records
// written before groups were recorded name only the kind ("Deployment"),
// and no two built-in kinds share a name.
func Lookup(group, kind string) *Kind {
	for _, k := range kinds {
		if k.Kind == kind && (k.Group == group || group == "" && k.BuiltIn()) {
			return k
		}
	}
	return nil
}

// ForObject returns the kind of a typed object, or of an unstructured one
// by its apiVersion and kind, or nil.
func ForObject(obj runtime.Object) *Kind {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		gvk := u.GroupVersionKind()
		k := Lookup(gvk.Group, gvk.Kind)
		if k == nil || k.BuiltIn() {
			return nil
		}
		return k
	}
	for _, k := range kinds {
		if k.api.typ == reflect.TypeOf(obj) {
			return k
		}
	}
	return nil
}

// Parse reads a TYPE as kubectl accepts it: the kind, its plural, a short
// name, or kind.group or resource.group ("deployment", "deployments",
// "deploy", "deployment.apps", "rollout.argoproj.io"), in any case.
func Parse(word string) *Kind {
	w := strings.ToLower(word)
	for _, k := range kinds {
		names := append([]string{}, k.Short...)
		if !k.Qualified {
			names = append(names, strings.ToLower(k.Kind), k.Resource)
		}
		if k.Group != "" {
			names = append(names, strings.ToLower(k.Kind)+"."+k.Group, k.Resource+"."+k.Group)
		}
		if slices.Contains(names, w) {
			return k
		}
	}
	return nil
}

// Names are the TYPE words every kind is printed with, for completion.
func Names() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.Name()
	}
	return out
}

// Name is the kind as kubectl prints it in TYPE/NAME: "deployment",
// "rollout.argoproj.io".
func (k *Kind) Name() string { return TypeName(k.Group, k.Kind) }

// Ref is "type/name" as kubectl prints an object of this kind.
func (k *Kind) Ref(name string) string { return k.Name() + "/" + name }

// GroupKind names the kind for the API.
func (k *Kind) GroupKind() schema.GroupKind { return schema.GroupKind{Group: k.Group, Kind: k.Kind} }

// GroupVersionKind names the kind and the version this table serves.
func (k *Kind) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

// GroupVersionResource names the resource and the version this table
// serves.
func (k *Kind) GroupVersionResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource}
}

// APIVersion is the apiVersion of a printed object of this kind.
func (k *Kind) APIVersion() string { return k.GroupVersionKind().GroupVersion().String() }

// New returns an empty object of this kind.
func (k *Kind) New() Object { return k.api.new() }

// Template returns the pod template of obj (in place for a typed object),
// or nil when it has none (an Argo Rollout with spec.workloadRef).
func (k *Kind) Template(obj Object) *corev1.PodTemplateSpec { return k.api.template(obj) }

// SetTemplate replaces the pod template of obj (a Pod's spec).
func (k *Kind) SetTemplate(obj Object, t *corev1.PodTemplateSpec) error {
	return k.api.setTemplate(obj, t)
}

// RawTemplate is the pod template as obj holds it: what a JSON patch puts
// back to restore it byte for byte (an unstructured object's fields no
// typed template knows included).
func (k *Kind) RawTemplate(obj Object) any { return k.api.raw(obj) }

// List lists the objects of namespace ns ("" all), page by page, handing
// each to each.
func (k *Kind) List(ctx context.Context, c Clients, ns string, lo metav1.ListOptions, each func(Object)) error {
	return k.api.list(ctx, c, ns, lo, each)
}

// Get reads one object.
func (k *Kind) Get(ctx context.Context, c Clients, ns, name string) (Object, error) {
	return k.api.get(ctx, c, ns, name)
}

// Patch patches one object.
func (k *Kind) Patch(ctx context.Context, c Clients, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error) {
	return k.api.patch(ctx, c, ns, name, pt, data, po)
}

// Follows reports whether obj follows the template of the controller that
// owns it (see Owners), so that the owner is the one to change.
func (k *Kind) Follows(obj metav1.Object) bool {
	ref := metav1.GetControllerOf(obj)
	if ref == nil {
		return false
	}
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return k.AnyOwner || slices.Contains(k.Owners, schema.GroupKind{Group: gv.Group, Kind: ref.Kind})
}

// Controller is the "type/name" of obj's controller, or "": the type as
// TypeName names it.
func Controller(obj metav1.Object) string {
	if ref := metav1.GetControllerOf(obj); ref != nil {
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		return TypeName(gv.Group, ref.Kind) + "/" + ref.Name
	}
	return ""
}

// TypeName is a kind as kubectl prints it in TYPE/NAME: "deployment" for
// the built-in groups (core, apps, batch), "rollout.argoproj.io" for any
// other, so that an API's Service is never taken for the core Service.
func TypeName(group, kind string) string {
	switch group {
	case "", "apps", "batch":
		return strings.ToLower(kind)
	}
	return strings.ToLower(kind) + "." + group
}

// ResourceGroup is the resource as kubectl spells it with its group
// ("deployments.apps"; "pods" for the core group), as RBAC reviews name it.
func (k *Kind) ResourceGroup() string {
	if k.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.Group
}

// Rewritable reports a kind whose objects switch may name: a built-in kind
// (its plan says why a Pod, a Job or a follower is left as it is) or one
// with a template path. Knative Revisions and Argo Workflows are readers
// only: naming one would plan nothing.
func (k *Kind) Rewritable() bool { return k.BuiltIn() || k.TemplatePath != nil }

// HasOwnReader reports a kind whose pod specs its own rule finds
// (PodSpecsOf) rather than its schema's paths.
func (k *Kind) HasOwnReader() bool { return k.podSpecs != nil }

// PodSpecsOf visits the pod specs of an object of this kind that its
// schema cannot show (Argo Workflows' templates); false when the kind has
// no such rule and the schema's paths are to be read.
func (k *Kind) PodSpecsOf(obj map[string]any, visit func(path string, spec *corev1.PodSpec) error) (bool, error) {
	if k == nil || k.podSpecs == nil {
		return false, nil
	}
	return true, k.podSpecs(obj, visit)
}

// errNoDynamic: a kind outside the built-in groups is read through the
// dynamic client only.
func errNoDynamic(k string) error { return fmt.Errorf("no client to read %s", k) }

// RunsOthersTemplates reports a kind whose objects may run another
// workload's template (RunsTemplateOf).
func (k *Kind) RunsOthersTemplates() bool { return k.runsTemplateOf != nil }

// RunsTemplateOf names the workload, in obj's namespace, whose pod
// template obj runs instead of a template of its own (an Argo Rollout's
// spec.workloadRef), or ok false.
func RunsTemplateOf(obj Object) (gk schema.GroupKind, name string, ok bool) {
	k := ForObject(obj)
	if k == nil || k.runsTemplateOf == nil {
		return schema.GroupKind{}, "", false
	}
	gk, name = k.runsTemplateOf(obj)
	return gk, name, gk.Kind != "" && name != ""
}

// Served returns which kinds of other APIs the server serves, from the
// group-versions of one discovery of its groups (ServerGroups): the
// others need no request at all. A LIST of a kind that is not served
// answers Forbidden before NotFound to a user without rights on it (the
// authorizer runs before the resource is looked up), so asking discovery
// first is what tells "not served" from "not allowed". The built-in
// kinds are always served.
func Served(d discovery.DiscoveryInterface) (func(*Kind) bool, error) {
	groups, err := d.ServerGroups()
	if err != nil {
		return nil, err
	}
	served := map[schema.GroupVersion]bool{}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			served[schema.GroupVersion{Group: g.Name, Version: v.Version}] = true
		}
	}
	return func(k *Kind) bool {
		return k.BuiltIn() || served[k.GroupVersionKind().GroupVersion()]
	}, nil
}
