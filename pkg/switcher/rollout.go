package switcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

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
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// noRollout says why a rewritten workload's pods will not be replaced, or
// "" when a rollout follows. A CronJob has none: its next Job is made
// from the new template (pkg/controller/cronjob, getJobFromTemplate2).
func noRollout(w *Workload) (result, msg string) {
	switch o := w.Object.(type) {
	case *appsv1.Deployment:
		// A paused Deployment does not roll out a template change
		// (pkg/controller/deployment/deployment_controller.go, syncDeployment:
		// "if d.Spec.Paused { return dc.sync(ctx, d, rsList) }", which only
		// scales).
		if o.Spec.Paused {
			return OutNotRolled, "changed, but the Deployment is paused: pods keep the old token until recreated (" + text.Kubectl() + " rollout resume)"
		}
	case *appsv1.StatefulSet:
		// OnDelete: "for the OnDelete strategy we short circuit. Pods will
		// be updated when they are manually deleted"
		// (pkg/controller/statefulset/stateful_set_control.go,
		// updateStatefulSet).
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return OutNotRolled, "changed, but its updateStrategy is OnDelete: pods keep the old token until recreated"
		}
	case *appsv1.DaemonSet:
		// pkg/controller/daemon/daemon_controller.go, updateDaemonSet: a
		// rolling update runs only for RollingUpdateDaemonSetStrategyType;
		// OnDeleteDaemonSetStrategyType does nothing.
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return OutNotRolled, "changed, but its updateStrategy is OnDelete: pods keep the old token until recreated"
		}
	}
	switch o := w.Object.(type) {
	case *batchv1.CronJob:
		return OutSwitched, "the next Job uses the projected token"
	case *appsv1.ReplicaSet:
		return OutNotRolled, replicaSetNotRolled(w, metav1.FormatLabelSelector(o.Spec.Selector))
	case *corev1.ReplicationController:
		return OutNotRolled, replicaSetNotRolled(w, labels.SelectorFromSet(o.Spec.Selector).String())
	}
	return "", ""
}

// replicaSetNotRolled is the outcome of a rewritten ReplicaSet or
// ReplicationController. Neither has a rollout: the controller compares pod
// counts, never templates (pkg/controller/replicaset/replica_set.go,
// manageReplicas, which also runs ReplicationControllers through
// pkg/controller/replication), and kubectl rollout status has no status
// viewer for them (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go,
// StatusViewerFor: "no status viewer has been implemented"). Done, as
// far as the template goes, once patched; its running pods keep the old
// token until they are recreated, which a pod deleted is (from the new
// template).
func replicaSetNotRolled(w *Workload, selector string) string {
	return fmt.Sprintf("changed, but a %s never replaces running pods and has no rollout: they keep the old token until recreated (%s delete pods -n %s -l '%s' recreates them from the new template)",
		w.Kind, text.Kubectl(), w.Object.GetNamespace(), selector)
}

var groupOf = map[string]string{legacy.KindDeployment: "apps", legacy.KindStatefulSet: "apps", legacy.KindDaemonSet: "apps"}

// RolloutStatus judges a workload as `kubectl rollout status` does, with
// its own StatusViewer (k8s.io/kubectl pkg/polymorphichelpers/
// rollout_status.go: observedGeneration first, then updated, available and
// ready replicas; a Deployment past its progress deadline is an error).
func RolloutStatus(w *Workload) (string, bool, error) {
	viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: groupOf[w.Kind], Kind: w.Kind})
	if err != nil {
		return "", false, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(w.Object)
	if err != nil {
		return "", false, err
	}
	return viewer.Status(&unstructured.Unstructured{Object: m}, 0)
}

// follow waits for the rollouts of the rewritten workloads.
func (a *applier) follow(ctx context.Context, ps []pending) []legacy.Outcome {
	var out []legacy.Outcome
	var wait []pending
	for _, p := range ps {
		// Whether pods will be replaced at all does not depend on
		// waiting: a workload that does not roll is reported so with
		// --wait=false too.
		if res, msg := noRollout(p.w); res != "" {
			out = append(out, outcome(p.w, res, "%s%s", p.msg, msg))
			continue
		}
		if !a.opts.Wait {
			out = append(out, outcome(p.w, OutSwitched, "%stemplate rewritten; rollout not waited for", p.msg))
			continue
		}
		wait = append(wait, p)
	}
	if len(wait) == 0 {
		return out
	}
	poll := a.opts.Poll
	if poll <= 0 {
		poll = time.Second
	}
	timeout := a.opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	last := make([]string, len(wait))
	done := make([]*legacy.Outcome, len(wait))
	for {
		var mu sync.Mutex
		left := 0
		kubeapi.Parallel(len(wait), a.opts.Workers, func(i int) {
			if done[i] != nil {
				return
			}
			p := wait[i]
			cur, err := GetWorkload(ctx, a.client, p.w.Kind, p.w.Object.GetNamespace(), p.w.Object.GetName())
			if err != nil {
				mu.Lock()
				last[i] = err.Error()
				left++
				mu.Unlock()
				return
			}
			msg, ok, err := RolloutStatus(cur)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				o := outcome(p.w, OutTimeout, "%stemplate rewritten; rollout failed: %v", p.msg, err)
				done[i] = &o
			case ok:
				o := outcome(p.w, OutSwitched, "%srolled out", p.msg)
				done[i] = &o
			default:
				last[i] = strings.TrimSpace(msg)
				left++
			}
		})
		if a.opts.Progress != nil {
			a.opts.Progress(fmt.Sprintf("rollouts: %d of %d done", len(wait)-left, len(wait)))
		}
		if left == 0 || ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
	for i, d := range done {
		if d != nil {
			out = append(out, *d)
			continue
		}
		why := "not rolled out within the timeout"
		if ctx.Err() != nil {
			why = "interrupted while waiting for the rollout"
		}
		out = append(out, outcome(wait[i].w, OutTimeout, "%stemplate rewritten; %s: %s", wait[i].msg, why, last[i]))
	}
	return out
}
