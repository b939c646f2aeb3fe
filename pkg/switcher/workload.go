package switcher

import (
	"fmt"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Workload is one object with a pod template.
type Workload struct {
	// Kind is the API's name of its kind ("Deployment"); Type has the
	// rest of its row in the workload table (its group among them).
	Kind   string
	Type   *workload.Kind
	Object workload.Object
}

// NewWorkload wraps an object of a kind of the workload table: typed, or
// unstructured for the kinds of other APIs.
func NewWorkload(obj runtime.Object) (*Workload, error) {
	k := workload.ForObject(obj)
	o, ok := obj.(workload.Object)
	if k == nil || !ok {
		return nil, fmt.Errorf("%T has no pod template switch knows", obj)
	}
	return &Workload{Kind: k.Kind, Type: k, Object: o}, nil
}

// Template is the workload's pod template, in place for a typed object (a
// Pod's is made up from its metadata and spec), a copy for the others;
// nil when it has none.
func (w *Workload) Template() *corev1.PodTemplateSpec { return w.Type.Template(w.Object) }

// key names the workload in a backup's index.
func (w *Workload) key() string { return backup.TypeKey(w.Kind, w.Type.Group) }

// outcome is a result of this workload.
func (w *Workload) outcome(result, format string, args ...any) backup.Outcome {
	return backup.Outcome{Kind: w.Kind, Group: backup.RecordGroup(w.Type.Group), Namespace: w.Object.GetNamespace(), Name: w.Object.GetName(), Result: result, Message: fmt.Sprintf(format, args...)}
}

// Immutable reports kinds whose pod template cannot be changed.
func (w *Workload) Immutable() bool { return w.Type.Immutable }

// Owner is the controller that owns the workload ("kind/name"), or "".
func (w *Workload) Owner() string { return workload.Controller(w.Object) }

// Ref is "kind/name" as kubectl prints it.
func (w *Workload) Ref() string { return w.Type.Ref(w.Object.GetName()) }

// Manifest is the workload with its new template and without the fields
// the server sets, for users who change manifests at their source.
func (p *Plan) Manifest() runtime.Object {
	w := p.Workload
	obj := w.Object.DeepCopyObject()
	c, _ := NewWorkload(obj)
	if p.Template != nil {
		// Only a kind with no writable template fails: it is never
		// switchable, so it has no new template.
		_ = w.Type.SetTemplate(c.Object, p.Template)
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
	out.SetGroupVersionKind(w.Type.GroupVersionKind())
	return out
}
