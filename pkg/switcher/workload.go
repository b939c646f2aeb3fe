package switcher

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// Kinds besides the ones a backup holds (legacy.Kind*): refused, shown.
const (
	KindJob = "Job"
	KindPod = "Pod"
)

// Workload is one object with a pod template.
type Workload struct {
	Kind   string
	Object interface {
		metav1.Object
		runtime.Object
	}
}

// NewWorkload wraps a typed object.
func NewWorkload(obj runtime.Object) (*Workload, error) {
	w := &Workload{}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		w.Kind, w.Object = legacy.KindDeployment, o
	case *appsv1.StatefulSet:
		w.Kind, w.Object = legacy.KindStatefulSet, o
	case *appsv1.DaemonSet:
		w.Kind, w.Object = legacy.KindDaemonSet, o
	case *appsv1.ReplicaSet:
		w.Kind, w.Object = legacy.KindReplicaSet, o
	case *corev1.ReplicationController:
		w.Kind, w.Object = legacy.KindReplicationController, o
	case *batchv1.CronJob:
		w.Kind, w.Object = legacy.KindCronJob, o
	case *batchv1.Job:
		w.Kind, w.Object = KindJob, o
	case *corev1.Pod:
		w.Kind, w.Object = KindPod, o
	default:
		return nil, fmt.Errorf("%T has no pod template switch knows", obj)
	}
	return w, nil
}

// Template is the workload's pod template, in place (a Pod's is made up
// from its metadata and spec).
func (w *Workload) Template() *corev1.PodTemplateSpec {
	switch o := w.Object.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	case *appsv1.ReplicaSet:
		return &o.Spec.Template
	case *corev1.ReplicationController:
		if o.Spec.Template == nil {
			o.Spec.Template = &corev1.PodTemplateSpec{}
		}
		return o.Spec.Template
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template
	case *batchv1.Job:
		return &o.Spec.Template
	case *corev1.Pod:
		return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: o.Labels, Annotations: o.Annotations}, Spec: o.Spec}
	}
	return nil
}

// templatePath is where the template's volumes are, for a merge patch.
func (w *Workload) templatePath() []string {
	if w.Kind == legacy.KindCronJob {
		return []string{"spec", "jobTemplate", "spec", "template"}
	}
	return []string{"spec", "template"}
}

// Immutable reports kinds whose pod template cannot be changed: a Job's
// (pkg/apis/batch/validation/validation.go, ValidateJobSpecUpdate: "field
// is immutable" on spec.template unless suspended and never started) and a
// Pod's spec (pkg/apis/core/validation/validation.go,
// ValidatePodUpdate: volumes may not change).
func (w *Workload) Immutable() bool { return w.Kind == KindJob || w.Kind == KindPod }

func (w *Workload) group() string {
	if w.Kind == KindJob {
		return "batch"
	}
	return "core"
}

// Owner is the controller that owns the workload ("kind/name"), or "".
func (w *Workload) Owner() string {
	if ref := metav1.GetControllerOf(w.Object); ref != nil {
		return strings.ToLower(ref.Kind) + "/" + ref.Name
	}
	return ""
}

// Ref is "kind/name" as kubectl prints it.
func (w *Workload) Ref() string { return strings.ToLower(w.Kind) + "/" + w.Object.GetName() }

// apiVersion of each kind, for printed objects.
func apiVersion(kind string) string {
	switch kind {
	case legacy.KindReplicationController, KindPod:
		return "v1"
	case legacy.KindCronJob, KindJob:
		return "batch/v1"
	}
	return "apps/v1"
}

// Manifest is the workload with its new template and without the fields
// the server sets, for users who change manifests at their source.
func (p *Plan) Manifest() runtime.Object {
	w := p.Workload
	obj := w.Object.DeepCopyObject()
	c, _ := NewWorkload(obj)
	if p.Template != nil {
		if pod, ok := obj.(*corev1.Pod); ok {
			pod.Spec = p.Template.Spec
		} else {
			*c.Template() = *p.Template.DeepCopy()
		}
	}
	m := c.Object
	m.SetUID("")
	m.SetResourceVersion("")
	m.SetGeneration(0)
	m.SetCreationTimestamp(metav1.Time{})
	m.SetManagedFields(nil)
	m.SetSelfLink("")
	if a := m.GetAnnotations(); a != nil {
		// Written by the controllers, not by users (k8s.io/kubectl
		// pkg/util/deployment: RevisionAnnotation; the DaemonSet
		// controller's deprecated.daemonset.template.generation).
		delete(a, "deployment.kubernetes.io/revision")
		delete(a, "deprecated.daemonset.template.generation")
		if len(a) == 0 {
			m.SetAnnotations(nil)
		}
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return obj
	}
	// Typed objects always carry status and a null creationTimestamp.
	delete(u, "status")
	if md, ok := u["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out := &unstructured.Unstructured{Object: u}
	out.SetGroupVersionKind(schemaGVK(w.Kind))
	return out
}
