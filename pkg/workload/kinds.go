package workload

import (
	"context"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
)

// Object is a workload object: typed, with metadata.
type Object interface {
	metav1.Object
	runtime.Object
}

// Kind is one row of the table.
type Kind struct {
	// Kind, Group and Version name it as the API does.
	Kind, Group, Version string
	// Resource is its plural resource name.
	Resource string
	// Short are kubectl's short names ("deploy").
	Short []string
	// TemplatePath is where the pod template is in the object, for a
	// merge patch.
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
	// FollowsOwner names the owner kind whose template an object of this
	// kind follows when that owner controls it (a Deployment's
	// ReplicaSets, a CronJob's Jobs), or "*" for any controller (a
	// controller's pods): switch changes the owner instead.
	FollowsOwner string

	api api
}

// api is how one kind is listed, read, patched and made from JSON.
type api struct {
	typ      reflect.Type
	new      func() Object
	template func(Object) *corev1.PodTemplateSpec
	list     func(ctx context.Context, c kubernetes.Interface, ns string, lo metav1.ListOptions, each func(Object)) error
	get      func(ctx context.Context, c kubernetes.Interface, ns, name string) (Object, error)
	patch    func(ctx context.Context, c kubernetes.Interface, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error)
}

// client is what client-go's typed clients (gentype.ClientWithList) offer.
type client[O Object, L interface {
	runtime.Object
	GetContinue() string
}] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (O, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (O, error)
}

// typed is the api of a kind served by client-go's typed client.
func typed[O Object, L interface {
	runtime.Object
	GetContinue() string
}](clientOf func(kubernetes.Interface, string) client[O, L], newObj func() O, template func(O) *corev1.PodTemplateSpec) api {
	return api{
		typ:      reflect.TypeOf(newObj()),
		new:      func() Object { return newObj() },
		template: func(o Object) *corev1.PodTemplateSpec { return template(o.(O)) },
		list: func(ctx context.Context, c kubernetes.Interface, ns string, lo metav1.ListOptions, each func(Object)) error {
			return kubeapi.EachPage(ctx, lo, clientOf(c, ns).List, func(l L) error {
				return meta.EachListItem(l, func(o runtime.Object) error {
					each(o.(Object))
					return nil
				})
			})
		},
		get: func(ctx context.Context, c kubernetes.Interface, ns, name string) (Object, error) {
			return clientOf(c, ns).Get(ctx, name, metav1.GetOptions{})
		},
		patch: func(ctx context.Context, c kubernetes.Interface, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error) {
			return clientOf(c, ns).Patch(ctx, name, pt, data, po)
		},
	}
}

var specTemplate = []string{"spec", "template"}

// kinds is the table, in the order readers and plans are printed.
var kinds = []*Kind{
	{Kind: "Deployment", Group: "apps", Version: "v1", Resource: "deployments", Short: []string{"deploy"}, TemplatePath: specTemplate, Restartable: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.Deployment, *appsv1.DeploymentList] {
			return c.AppsV1().Deployments(ns)
		}, func() *appsv1.Deployment { return &appsv1.Deployment{} }, func(o *appsv1.Deployment) *corev1.PodTemplateSpec { return &o.Spec.Template })},
	{Kind: "StatefulSet", Group: "apps", Version: "v1", Resource: "statefulsets", Short: []string{"sts"}, TemplatePath: specTemplate, Restartable: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.StatefulSet, *appsv1.StatefulSetList] {
			return c.AppsV1().StatefulSets(ns)
		}, func() *appsv1.StatefulSet { return &appsv1.StatefulSet{} }, func(o *appsv1.StatefulSet) *corev1.PodTemplateSpec { return &o.Spec.Template })},
	{Kind: "DaemonSet", Group: "apps", Version: "v1", Resource: "daemonsets", Short: []string{"ds"}, TemplatePath: specTemplate, Restartable: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
			return c.AppsV1().DaemonSets(ns)
		}, func() *appsv1.DaemonSet { return &appsv1.DaemonSet{} }, func(o *appsv1.DaemonSet) *corev1.PodTemplateSpec { return &o.Spec.Template })},
	{Kind: "CronJob", Group: "batch", Version: "v1", Resource: "cronjobs", Short: []string{"cj"}, TemplatePath: []string{"spec", "jobTemplate", "spec", "template"},
		api: typed(func(c kubernetes.Interface, ns string) client[*batchv1.CronJob, *batchv1.CronJobList] {
			return c.BatchV1().CronJobs(ns)
		}, func() *batchv1.CronJob { return &batchv1.CronJob{} }, func(o *batchv1.CronJob) *corev1.PodTemplateSpec { return &o.Spec.JobTemplate.Spec.Template })},
	{Kind: "Job", Group: "batch", Version: "v1", Resource: "jobs", TemplatePath: specTemplate, Immutable: true, FollowsOwner: "CronJob",
		api: typed(func(c kubernetes.Interface, ns string) client[*batchv1.Job, *batchv1.JobList] {
			return c.BatchV1().Jobs(ns)
		}, func() *batchv1.Job { return &batchv1.Job{} }, func(o *batchv1.Job) *corev1.PodTemplateSpec { return &o.Spec.Template })},
	{Kind: "ReplicaSet", Group: "apps", Version: "v1", Resource: "replicasets", Short: []string{"rs"}, TemplatePath: specTemplate, FollowsOwner: "Deployment",
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.ReplicaSet, *appsv1.ReplicaSetList] {
			return c.AppsV1().ReplicaSets(ns)
		}, func() *appsv1.ReplicaSet { return &appsv1.ReplicaSet{} }, func(o *appsv1.ReplicaSet) *corev1.PodTemplateSpec { return &o.Spec.Template })},
	{Kind: "ReplicationController", Version: "v1", Resource: "replicationcontrollers", Short: []string{"rc"}, TemplatePath: specTemplate,
		api: typed(func(c kubernetes.Interface, ns string) client[*corev1.ReplicationController, *corev1.ReplicationControllerList] {
			return c.CoreV1().ReplicationControllers(ns)
		}, func() *corev1.ReplicationController { return &corev1.ReplicationController{} }, func(o *corev1.ReplicationController) *corev1.PodTemplateSpec {
			// A ReplicationController's template is optional (a pointer):
			// an empty one, in place, reads nothing and can be written.
			if o.Spec.Template == nil {
				o.Spec.Template = &corev1.PodTemplateSpec{}
			}
			return o.Spec.Template
		})},
	{Kind: "Pod", Version: "v1", Resource: "pods", Short: []string{"po"}, Immutable: true, FollowsOwner: "*",
		api: typed(func(c kubernetes.Interface, ns string) client[*corev1.Pod, *corev1.PodList] {
			return c.CoreV1().Pods(ns)
		}, func() *corev1.Pod { return &corev1.Pod{} }, func(o *corev1.Pod) *corev1.PodTemplateSpec {
			// Made up from the pod's metadata and spec: a pod has no
			// template, but reads Secrets through its spec alike.
			return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: o.Labels, Annotations: o.Annotations}, Spec: o.Spec}
		})},
}

// Kinds lists the table in print order.
func Kinds() []*Kind { return kinds }

// For returns the kind named kind ("Deployment"), or nil.
func For(kind string) *Kind {
	for _, k := range kinds {
		if k.Kind == kind {
			return k
		}
	}
	return nil
}

// ForObject returns the kind of a typed object, or nil.
func ForObject(obj runtime.Object) *Kind {
	for _, k := range kinds {
		if k.api.typ == reflect.TypeOf(obj) {
			return k
		}
	}
	return nil
}

// Parse reads a TYPE as kubectl accepts it: the kind, its plural, a short
// name, or kind.group ("deployment", "deployments", "deploy",
// "deployment.apps"), in any case.
func Parse(word string) *Kind {
	w := strings.ToLower(word)
	for _, k := range kinds {
		names := append([]string{k.Name(), k.Resource}, k.Short...)
		if k.Group != "" {
			names = append(names, k.Name()+"."+k.Group)
		}
		for _, n := range names {
			if n == w {
				return k
			}
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

// Name is the kind as kubectl prints it in TYPE/NAME: "deployment".
func (k *Kind) Name() string { return TypeName(k.Group, k.Kind) }

// Ref is "type/name" as kubectl prints an object of this kind.
func (k *Kind) Ref(name string) string { return k.Name() + "/" + name }

// GroupKind names the kind for the API.
func (k *Kind) GroupKind() schema.GroupKind { return schema.GroupKind{Group: k.Group, Kind: k.Kind} }

// GroupVersionKind names the kind and the version this table serves.
func (k *Kind) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

// APIVersion is the apiVersion of a printed object of this kind.
func (k *Kind) APIVersion() string { return k.GroupVersionKind().GroupVersion().String() }

// New returns an empty object of this kind.
func (k *Kind) New() Object { return k.api.new() }

// Template returns the pod template of obj, in place.
func (k *Kind) Template(obj Object) *corev1.PodTemplateSpec { return k.api.template(obj) }

// List lists the objects of namespace ns ("" all), page by page, handing
// each to each.
func (k *Kind) List(ctx context.Context, c kubernetes.Interface, ns string, lo metav1.ListOptions, each func(Object)) error {
	return k.api.list(ctx, c, ns, lo, each)
}

// Get reads one object.
func (k *Kind) Get(ctx context.Context, c kubernetes.Interface, ns, name string) (Object, error) {
	return k.api.get(ctx, c, ns, name)
}

// Patch patches one object.
func (k *Kind) Patch(ctx context.Context, c kubernetes.Interface, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error) {
	return k.api.patch(ctx, c, ns, name, pt, data, po)
}

// Follows reports whether obj follows the template of the controller that
// owns it (see FollowsOwner), so that the owner is the one to change.
func (k *Kind) Follows(obj metav1.Object) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && (k.FollowsOwner == "*" || ref.Kind == k.FollowsOwner)
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
