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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"
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
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
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
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list deployments in %s: %w", ns, err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		out = append(out, workload{"deployment", d.Name, d})
	}
	sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list statefulsets in %s: %w", ns, err)
	}
	for i := range sts.Items {
		s := &sts.Items[i]
		s.APIVersion, s.Kind = "apps/v1", "StatefulSet"
		out = append(out, workload{"statefulset", s.Name, s})
	}
	dss, err := cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
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
	var patch []byte
	switch w.kind {
	case "deployment":
		patch, err = strategicpatch.CreateTwoWayMergePatch(orig, modified, &appsv1.Deployment{})
		if err == nil {
			_, err = cs.AppsV1().Deployments(ns).Patch(ctx, w.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		}
	case "statefulset":
		patch, err = strategicpatch.CreateTwoWayMergePatch(orig, modified, &appsv1.StatefulSet{})
		if err == nil {
			_, err = cs.AppsV1().StatefulSets(ns).Patch(ctx, w.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		}
	case "daemonset":
		patch, err = strategicpatch.CreateTwoWayMergePatch(orig, modified, &appsv1.DaemonSet{})
		if err == nil {
			_, err = cs.AppsV1().DaemonSets(ns).Patch(ctx, w.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		}
	}
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
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return res, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		res.Namespaces++
		for _, p := range pods.Items {
			id := "pod/" + ns + "/" + p.Name
			if !o.DryRun {
				if err := cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
					res.Failed = append(res.Failed, id+": "+err.Error())
					continue
				}
			}
			res.Restarted = append(res.Restarted, id)
		}
		o.progress("namespace %s: deleted %d pods (%d/%d namespaces)", ns, len(pods.Items), i+1, len(nss))
	}
	return res, nil
}
