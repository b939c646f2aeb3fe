package workload

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kubectl/pkg/polymorphichelpers"
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

// RolloutOf says what changing obj's pod template does to its pods. A
// kind whose rollout this tool cannot judge is Held, so that a switch of
// it is never reported rolled out.
func RolloutOf(obj Object) Rollout {
	k := ForObject(obj)
	if k == nil {
		return Rollout{Held: fmt.Sprintf("this tool cannot judge the rollout of a %T", obj)}
	}
	var r Rollout
	if k.rollout != nil {
		r = k.rollout(obj)
	}
	if r.Next == "" && r.Held == "" && k.status == nil {
		r.Held = "this tool cannot judge the rollout of a " + k.Name()
	}
	return r
}

// RolloutStatus judges an object's rollout by its kind's own rule: the
// built-in kinds as `kubectl rollout status` does, the others as their
// projects' own clients do (custom.go). It says what the status shows,
// whether the rollout is over, and an error when it failed.
func RolloutStatus(obj Object) (string, bool, error) {
	k := ForObject(obj)
	if k == nil || k.status == nil {
		return "", false, fmt.Errorf("%T has no rollout this tool can judge", obj)
	}
	return k.status(obj)
}

// kubectlStatus judges a built-in kind's rollout with kubectl's own
// StatusViewer (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go:
// observedGeneration first, then updated, available and ready replicas; a
// Deployment past its progress deadline is an error).
func kubectlStatus(obj Object) (string, bool, error) {
	viewer, err := polymorphichelpers.StatusViewerFor(ForObject(obj).GroupKind())
	if err != nil {
		return "", false, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return "", false, err
	}
	return viewer.Status(&unstructured.Unstructured{Object: m}, 0)
}

// History reports whether obj is rollout history rather than a reader: no
// pod reads through it now, but an undo would bring it back (a
// Deployment's or an Argo Rollout's ReplicaSet at 0 replicas, a Knative
// Revision no route serves). Each kind's rule is in its entry.
func History(obj Object) bool {
	k := ForObject(obj)
	return k != nil && k.history != nil && k.history(obj)
}
