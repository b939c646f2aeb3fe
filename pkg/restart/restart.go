// Package restart makes running workloads pick up new ServiceAccount tokens
// after an issuer or key change: a rolling restart of Deployments,
// StatefulSets and DaemonSets exactly as `kubectl rollout restart` does it,
// or (the documented fallback, which interrupts service) deleting pods.
package restart

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Options select what is restarted.
type Options struct {
	// Namespaces to restart in; empty means every namespace.
	Namespaces []string
	// IncludeSystem also restarts in openshift-* and kube-* namespaces,
	// which the platform's operators manage and restart themselves.
	IncludeSystem bool
	// Pause between namespaces, so a cluster is not restarted all at once.
	Pause time.Duration
	// Progress receives one line per namespace and per failure.
	Progress func(string)
	DryRun   bool
}

// Result counts what was done.
type Result struct {
	Namespaces int      `json:"namespaces"`
	Restarted  []string `json:"restarted"` // kind/namespace/name
	// Skipped are system namespaces left alone.
	Skipped []string `json:"skippedNamespaces,omitempty"`
	Failed  []string `json:"failed,omitempty"`
}

// IsSystemNamespace reports namespaces left alone unless asked.
func IsSystemNamespace(ns string) bool {
	return strings.HasPrefix(ns, "openshift-") || ns == "openshift" || strings.HasPrefix(ns, "kube-")
}

func (o Options) progress(format string, a ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, a...))
	}
}

func namespaces(ctx context.Context, cs kubernetes.Interface, o Options, res *Result) ([]string, error) {
	var nss []string
	if len(o.Namespaces) > 0 {
		nss = append(nss, o.Namespaces...)
	} else {
		list, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.NamespaceList, error) {
			return cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		})
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		for _, n := range list.Items {
			if o.IncludeSystem || !IsSystemNamespace(n.Name) {
				nss = append(nss, n.Name)
			} else {
				res.Skipped = append(res.Skipped, n.Name)
			}
		}
	}
	sort.Strings(nss)
	return nss, nil
}

// Workloads restarts every Deployment, StatefulSet and DaemonSet, namespace
// by namespace, with kubectl's ObjectRestarter (the
// kubectl.kubernetes.io/restartedAt pod-template annotation), sent as the
// same strategic merge patch `kubectl rollout restart` sends.
func Workloads(ctx context.Context, cs kubernetes.Interface, o Options) (*Result, error) {
	res := &Result{}
	nss, err := namespaces(ctx, cs, o, res)
	if err != nil {
		return nil, err
	}
	for i, ns := range nss {
		if i > 0 && o.Pause > 0 && !o.DryRun {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(o.Pause):
			}
		}
		objs, err := workloadsIn(ctx, cs, ns)
		if err != nil {
			return res, err
		}
		res.Namespaces++
		n := 0
		for _, obj := range objs {
			id := obj.kind + "/" + ns + "/" + obj.name
			if o.DryRun {
				res.Restarted = append(res.Restarted, id)
				n++
				continue
			}
			if err := restartOne(ctx, cs, ns, obj); err != nil {
				res.Failed = append(res.Failed, id+": "+err.Error())
				o.progress("%s: %v", id, err)
				continue
			}
			res.Restarted = append(res.Restarted, id)
			n++
		}
		o.progress("namespace %s: restarted %d workloads (%d/%d namespaces)", ns, n, i+1, len(nss))
	}
	return res, nil
}

type workload struct {
	kind, name string
	obj        runtime.Object
}

func workloadsIn(ctx context.Context, cs kubernetes.Interface, ns string) ([]workload, error) {
	var out []workload
	deps, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*appsv1.DeploymentList, error) {
		return cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("list deployments in %s: %w", ns, err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		out = append(out, workload{"deployment", d.Name, d})
	}
	sts, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*appsv1.StatefulSetList, error) {
		return cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("list statefulsets in %s: %w", ns, err)
	}
	for i := range sts.Items {
		s := &sts.Items[i]
		s.APIVersion, s.Kind = "apps/v1", "StatefulSet"
		out = append(out, workload{"statefulset", s.Name, s})
	}
	dss, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*appsv1.DaemonSetList, error) {
		return cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("list daemonsets in %s: %w", ns, err)
	}
	for i := range dss.Items {
		d := &dss.Items[i]
		d.APIVersion, d.Kind = "apps/v1", "DaemonSet"
		out = append(out, workload{"daemonset", d.Name, d})
	}
	return out, nil
}

func restartOne(ctx context.Context, cs kubernetes.Interface, ns string, w workload) error {
	orig, err := json.Marshal(w.obj)
	if err != nil {
		return err
	}
	modified, err := polymorphichelpers.ObjectRestarterFn(w.obj.DeepCopyObject())
	if err != nil {
		return err
	}
	// The patch is made once: a repeat after a lost answer sends the same
	// restartedAt, which changes nothing, so no workload rolls twice.
	var (
		patch []byte
		send  func(context.Context) error
	)
	switch w.kind {
	case "deployment":
		patch, err = strategicpatch.CreateTwoWayMergePatch(orig, modified, &appsv1.Deployment{})
		send = func(ctx context.Context) error {
			_, err := cs.AppsV1().Deployments(ns).Patch(ctx, w.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		}
	case "statefulset":
		patch, err = strategicpatch.CreateTwoWayMergePatch(orig, modified, &appsv1.StatefulSet{})
		send = func(ctx context.Context) error {
			_, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, w.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		}
	case "daemonset":
		patch, err = strategicpatch.CreateTwoWayMergePatch(orig, modified, &appsv1.DaemonSet{})
		send = func(ctx context.Context) error {
			_, err := cs.AppsV1().DaemonSets(ns).Patch(ctx, w.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		}
	default:
		return fmt.Errorf("cannot restart a %s", w.kind)
	}
	if err != nil {
		return err
	}
	_, err = retry.Do(ctx, retry.Default, send)
	return err
}

// Pods deletes every pod (the documented fallback): each is re-created by
// its controller with a fresh token, but the service is interrupted.
func Pods(ctx context.Context, cs kubernetes.Interface, o Options) (*Result, error) {
	res := &Result{}
	nss, err := namespaces(ctx, cs, o, res)
	if err != nil {
		return nil, err
	}
	for i, ns := range nss {
		if i > 0 && o.Pause > 0 && !o.DryRun {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(o.Pause):
			}
		}
		pods, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.PodList, error) {
			return cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		})
		if err != nil {
			return res, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		res.Namespaces++
		n := 0
		for _, p := range pods.Items {
			id := "pod/" + ns + "/" + p.Name
			if !o.DryRun {
				if err := deletePod(ctx, cs, &p); err != nil {
					res.Failed = append(res.Failed, id+": "+err.Error())
					o.progress("%s: %v", id, err)
					continue
				}
			}
			res.Restarted = append(res.Restarted, id)
			n++
		}
		o.progress("namespace %s: deleted %d pods (%d/%d namespaces)", ns, n, i+1, len(nss))
	}
	return res, nil
}

// deletePod deletes the pod that was listed and no other: a StatefulSet
// re-creates a pod under the same name, and a repeat after a lost answer must
// not delete that new pod, which already has a fresh token. The uid
// precondition makes such a repeat fail with a conflict instead.
func deletePod(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) error {
	uid := p.UID
	_, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		return cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	})
	// Not found, or a conflict (a pod of another uid under the name): the
	// listed pod is gone, deleted by an earlier try whose answer was lost or
	// by someone else, and what replaced it starts with a fresh token.
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
