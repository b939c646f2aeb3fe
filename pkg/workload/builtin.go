package workload

import (
	"context"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
)

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
		setTemplate: func(o Object, t *corev1.PodTemplateSpec) error {
			if pod, ok := any(o).(*corev1.Pod); ok {
				pod.Spec = *t.Spec.DeepCopy()
				return nil
			}
			*template(o.(O)) = *t.DeepCopy()
			return nil
		},
		raw: func(o Object) any { return template(o.(O)) },
		list: func(ctx context.Context, c Clients, ns string, lo metav1.ListOptions, each func(Object)) error {
			return kubeapi.EachPage(ctx, lo, clientOf(c.Kube, ns).List, func(l L) error {
				return meta.EachListItem(l, func(o runtime.Object) error {
					each(o.(Object))
					return nil
				})
			})
		},
		get: func(ctx context.Context, c Clients, ns, name string) (Object, error) {
			return clientOf(c.Kube, ns).Get(ctx, name, metav1.GetOptions{})
		},
		patch: func(ctx context.Context, c Clients, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error) {
			return clientOf(c.Kube, ns).Patch(ctx, name, pt, data, po)
		},
	}
}

var specTemplate = []string{"spec", "template"}

// builtinKinds are the kinds of the built-in groups, each judged as
// `kubectl rollout status` judges it (kubectlStatus).
var builtinKinds = []*Kind{
	{Kind: "Deployment", Group: "apps", Version: "v1", Resource: "deployments", Short: []string{"deploy"}, TemplatePath: specTemplate, Restartable: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.Deployment, *appsv1.DeploymentList] {
			return c.AppsV1().Deployments(ns)
		}, func() *appsv1.Deployment { return &appsv1.Deployment{} }, func(o *appsv1.Deployment) *corev1.PodTemplateSpec { return &o.Spec.Template }),
		rollout: func(obj Object) Rollout {
			// A paused Deployment does not roll out a template change
			// (pkg/controller/deployment/deployment_controller.go,
			// syncDeployment: "if d.Spec.Paused { return dc.sync(ctx, d,
			// rsList) }", which only scales).
			if obj.(*appsv1.Deployment).Spec.Paused {
				return Rollout{Held: "the Deployment is paused", Hint: text.Kubectl() + " rollout resume"}
			}
			return Rollout{}
		},
		status: kubectlStatus},
	{Kind: "StatefulSet", Group: "apps", Version: "v1", Resource: "statefulsets", Short: []string{"sts"}, TemplatePath: specTemplate, Restartable: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.StatefulSet, *appsv1.StatefulSetList] {
			return c.AppsV1().StatefulSets(ns)
		}, func() *appsv1.StatefulSet { return &appsv1.StatefulSet{} }, func(o *appsv1.StatefulSet) *corev1.PodTemplateSpec { return &o.Spec.Template }),
		rollout: func(obj Object) Rollout {
			// OnDelete: "for the OnDelete strategy we short circuit. Pods
			// will be updated when they are manually deleted"
			// (pkg/controller/statefulset/stateful_set_control.go,
			// updateStatefulSet).
			if obj.(*appsv1.StatefulSet).Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
				return Rollout{Held: "its updateStrategy is OnDelete"}
			}
			return Rollout{}
		},
		status: kubectlStatus},
	{Kind: "DaemonSet", Group: "apps", Version: "v1", Resource: "daemonsets", Short: []string{"ds"}, TemplatePath: specTemplate, Restartable: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
			return c.AppsV1().DaemonSets(ns)
		}, func() *appsv1.DaemonSet { return &appsv1.DaemonSet{} }, func(o *appsv1.DaemonSet) *corev1.PodTemplateSpec { return &o.Spec.Template }),
		rollout: func(obj Object) Rollout {
			// pkg/controller/daemon/daemon_controller.go, updateDaemonSet:
			// a rolling update runs only for
			// RollingUpdateDaemonSetStrategyType;
			// OnDeleteDaemonSetStrategyType does nothing.
			if obj.(*appsv1.DaemonSet).Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
				return Rollout{Held: "its updateStrategy is OnDelete"}
			}
			return Rollout{}
		},
		status: kubectlStatus},
	{Kind: "CronJob", Group: "batch", Version: "v1", Resource: "cronjobs", Short: []string{"cj"}, TemplatePath: []string{"spec", "jobTemplate", "spec", "template"},
		api: typed(func(c kubernetes.Interface, ns string) client[*batchv1.CronJob, *batchv1.CronJobList] {
			return c.BatchV1().CronJobs(ns)
		}, func() *batchv1.CronJob { return &batchv1.CronJob{} }, func(o *batchv1.CronJob) *corev1.PodTemplateSpec { return &o.Spec.JobTemplate.Spec.Template }),
		// A CronJob has no rollout: its next Job is made from the new
		// template (pkg/controller/cronjob, getJobFromTemplate2).
		rollout: func(Object) Rollout { return Rollout{Next: "Job"} }},
	{Kind: "Job", Group: "batch", Version: "v1", Resource: "jobs", TemplatePath: specTemplate, Immutable: true,
		// KEDA's ScaledJob makes Jobs from its template (keda
		// pkg/scaling/executor/scale_jobs.go, generateJobs, with
		// SetControllerReference to the ScaledJob).
		Owners: []schema.GroupKind{{Group: "batch", Kind: "CronJob"}, {Group: "keda.sh", Kind: "ScaledJob"}},
		api: typed(func(c kubernetes.Interface, ns string) client[*batchv1.Job, *batchv1.JobList] {
			return c.BatchV1().Jobs(ns)
		}, func() *batchv1.Job { return &batchv1.Job{} }, func(o *batchv1.Job) *corev1.PodTemplateSpec { return &o.Spec.Template })},
	{Kind: "ReplicaSet", Group: "apps", Version: "v1", Resource: "replicasets", Short: []string{"rs"}, TemplatePath: specTemplate,
		Owners: []schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Group: "argoproj.io", Kind: "Rollout"}},
		api: typed(func(c kubernetes.Interface, ns string) client[*appsv1.ReplicaSet, *appsv1.ReplicaSetList] {
			return c.AppsV1().ReplicaSets(ns)
		}, func() *appsv1.ReplicaSet { return &appsv1.ReplicaSet{} }, func(o *appsv1.ReplicaSet) *corev1.PodTemplateSpec { return &o.Spec.Template }),
		rollout: func(obj Object) Rollout {
			o := obj.(*appsv1.ReplicaSet)
			return replicaSetHeld("ReplicaSet", o, metav1.FormatLabelSelector(o.Spec.Selector))
		},
		history: replicaSetHistory},
	{Kind: "ReplicationController", Version: "v1", Resource: "replicationcontrollers", Short: []string{"rc"}, TemplatePath: specTemplate,
		// An OpenShift DeploymentConfig runs each revision as a
		// ReplicationController made from its template with a controller
		// reference to it (openshift/library-go pkg/apps/appsutil,
		// MakeDeployment and newControllerRef).
		Owners: []schema.GroupKind{{Group: "apps.openshift.io", Kind: "DeploymentConfig"}},
		api: typed(func(c kubernetes.Interface, ns string) client[*corev1.ReplicationController, *corev1.ReplicationControllerList] {
			return c.CoreV1().ReplicationControllers(ns)
		}, func() *corev1.ReplicationController { return &corev1.ReplicationController{} }, func(o *corev1.ReplicationController) *corev1.PodTemplateSpec {
			// A ReplicationController's template is optional (a pointer):
			// an empty one, in place, reads nothing and can be written.
			if o.Spec.Template == nil {
				o.Spec.Template = &corev1.PodTemplateSpec{}
			}
			return o.Spec.Template
		}),
		rollout: func(obj Object) Rollout {
			o := obj.(*corev1.ReplicationController)
			return replicaSetHeld("ReplicationController", o, labels.SelectorFromSet(o.Spec.Selector).String())
		}},
	{Kind: "Pod", Version: "v1", Resource: "pods", Short: []string{"po"}, Immutable: true, AnyOwner: true,
		api: typed(func(c kubernetes.Interface, ns string) client[*corev1.Pod, *corev1.PodList] {
			return c.CoreV1().Pods(ns)
		}, func() *corev1.Pod { return &corev1.Pod{} }, func(o *corev1.Pod) *corev1.PodTemplateSpec {
			// Made up from the pod's metadata and spec: a pod has no
			// template, but reads Secrets through its spec alike.
			return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: o.Labels, Annotations: o.Annotations}, Spec: o.Spec}
		})},
}

// replicaSetHeld is the rollout of a ReplicaSet or ReplicationController.
// Neither has one: the controller compares pod counts, never templates
// (pkg/controller/replicaset/replica_set.go, manageReplicas, which also
// runs ReplicationControllers through pkg/controller/replication), and
// kubectl rollout status has no status viewer for them (k8s.io/kubectl
// pkg/polymorphichelpers/rollout_status.go, StatusViewerFor: "no status
// viewer has been implemented"). A pod deleted is recreated from the new
// template.
func replicaSetHeld(kind string, o metav1.Object, selector string) Rollout {
	return Rollout{
		Held: "a " + kind + " never replaces running pods and has no rollout",
		Hint: text.Kubectl() + " delete pods -n " + o.GetNamespace() + " -l '" + selector + "' recreates them from the new template",
	}
}

// replicaSetHistory: a ReplicaSet at 0 replicas of a Deployment or of an
// Argo Rollout has no pod reading through it now, but `kubectl rollout
// undo` (or `kubectl argo rollouts undo`) would bring it back. Both
// controllers keep such ReplicaSets as revision history (Kubernetes
// pkg/controller/deployment/sync.go, cleanupDeployment; argo-rollouts
// v1.10.1 rollout/sync.go, reconcileRevisionHistoryLimit: "older versions
// of the podtemplate of a rollout kept around").
func replicaSetHistory(obj Object) bool {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 0 {
		return false
	}
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return false
	}
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return gv.Group == "apps" && ref.Kind == "Deployment" || gv.Group == "argoproj.io" && ref.Kind == "Rollout"
}
