package workload

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
)

// Rollout is what a change of an object's pod template does to its
// running pods.
type Rollout struct {
	// Next names what is made next from the new template when no pod is
	// replaced ("Job": a CronJob's next Job); "" otherwise.
	Next string
	// Held says why running pods are not replaced ("" when a rollout
	// replaces them), Hint how a user replaces them ("" when none helps).
	Held, Hint string
}

// RolloutOf says what changing obj's pod template does to its pods.
func RolloutOf(obj Object) Rollout {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		// A paused Deployment does not roll out a template change
		// (pkg/controller/deployment/deployment_controller.go, syncDeployment:
		// "if d.Spec.Paused { return dc.sync(ctx, d, rsList) }", which only
		// scales).
		if o.Spec.Paused {
			return Rollout{Held: "the Deployment is paused", Hint: text.Kubectl() + " rollout resume"}
		}
	case *appsv1.StatefulSet:
		// OnDelete: "for the OnDelete strategy we short circuit. Pods will
		// be updated when they are manually deleted"
		// (pkg/controller/statefulset/stateful_set_control.go,
		// updateStatefulSet).
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return Rollout{Held: "its updateStrategy is OnDelete"}
		}
	case *appsv1.DaemonSet:
		// pkg/controller/daemon/daemon_controller.go, updateDaemonSet: a
		// rolling update runs only for RollingUpdateDaemonSetStrategyType;
		// OnDeleteDaemonSetStrategyType does nothing.
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return Rollout{Held: "its updateStrategy is OnDelete"}
		}
	case *batchv1.CronJob:
		// A CronJob has no rollout: its next Job is made from the new
		// template (pkg/controller/cronjob, getJobFromTemplate2).
		return Rollout{Next: "Job"}
	case *appsv1.ReplicaSet:
		return replicaSetHeld("ReplicaSet", o, metav1.FormatLabelSelector(o.Spec.Selector))
	case *corev1.ReplicationController:
		return replicaSetHeld("ReplicationController", o, labels.SelectorFromSet(o.Spec.Selector).String())
	}
	return Rollout{}
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
		Hint: fmt.Sprintf("%s delete pods -n %s -l '%s' recreates them from the new template", text.Kubectl(), o.GetNamespace(), selector),
	}
}

// RolloutStatus judges an object's rollout as `kubectl rollout status`
// does, with its own StatusViewer (k8s.io/kubectl pkg/polymorphichelpers/
// rollout_status.go: observedGeneration first, then updated, available and
// ready replicas; a Deployment past its progress deadline is an error).
func RolloutStatus(obj Object) (string, bool, error) {
	k := ForObject(obj)
	if k == nil {
		return "", false, fmt.Errorf("%T has no rollout this tool can judge", obj)
	}
	viewer, err := polymorphichelpers.StatusViewerFor(k.GroupKind())
	if err != nil {
		return "", false, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return "", false, err
	}
	return viewer.Status(&unstructured.Unstructured{Object: m}, 0)
}

// History reports whether obj is rollout history rather than a reader: a
// ReplicaSet at 0 replicas of a Deployment or of an Argo Rollout has no
// pod reading through it now, but `kubectl rollout undo` (or `kubectl
// argo rollouts undo`) would bring it back. Both controllers keep such
// ReplicaSets as revision history (Kubernetes
// pkg/controller/deployment/sync.go, cleanupDeployment; argo-rollouts
// v1.10.1 rollout/sync.go, reconcileRevisionHistoryLimit: "older versions
// of the podtemplate of a rollout kept around").
func History(obj Object) bool {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok || rs.Spec.Replicas == nil || *rs.Spec.Replicas != 0 {
		return false
	}
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return false
	}
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return gv.Group == "apps" && ref.Kind == "Deployment" || gv.Group == "argoproj.io" && ref.Kind == "Rollout"
}
