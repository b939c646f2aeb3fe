// Package restart makes running workloads pick up new ServiceAccount tokens
// after an issuer or key change: a rolling restart of the kinds `kubectl
// rollout restart` restarts (the workload table's Restartable kinds),
// exactly as it does it, or (the documented fallback, which interrupts
// service) deleting pods.
//
// It must not import pkg/legacy, pkg/switcher, pkg/backup or pkg/cmd.
package restart

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
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
	// DryRun: client reports what would be restarted and sends nothing;
	// server sends each patch and delete with dryRun=All (admitted and
	// validated, stored nothing). Neither pauses.
	DryRun cmdutil.DryRunStrategy
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

// Workloads restarts every object of a Restartable kind of the workload
// table (Deployments, StatefulSets, DaemonSets), namespace by namespace,
// with kubectl's ObjectRestarter (the kubectl.kubernetes.io/restartedAt
// pod-template annotation), sent as the same strategic merge patch
// `kubectl rollout restart` sends.
func Workloads(ctx context.Context, cs kubernetes.Interface, o Options) (*Result, error) {
	return eachNamespace(ctx, cs, o, "restarted %d workloads", func(ns string, res *Result) (int, error) {
		// Every kind is listed before the first restart: a namespace that
		// cannot be read is not half restarted.
		type one struct {
			k   *workload.Kind
			obj workload.Object
		}
		var all []one
		for _, k := range workload.Kinds() {
			if !k.Restartable {
				continue
			}
			err := k.List(ctx, workload.Clients{Kube: cs}, ns, metav1.ListOptions{}, func(obj workload.Object) { all = append(all, one{k, obj}) })
			if err != nil {
				return 0, fmt.Errorf("list %s in %s: %w", k.Resource, ns, err)
			}
		}
		n := 0
		for _, w := range all {
			n += res.record(o, w.k.Name()+"/"+ns+"/"+w.obj.GetName(), restartOne(ctx, cs, w.k, w.obj, o.DryRun))
		}
		return n, nil
	})
}

// record counts what was done to one object (id: kind/namespace/name):
// restarted, or failed with its error, which progress also reports. It
// returns 1 for a restart.
func (r *Result) record(o Options, id string, err error) int {
	if err != nil {
		r.Failed = append(r.Failed, id+": "+err.Error())
		o.progress("%s: %v", id, err)
		return 0
	}
	r.Restarted = append(r.Restarted, id)
	return 1
}

// eachNamespace runs one namespace after another, with Options.Pause
// between them (none in a dry run), and says what each did ("restarted
// %d workloads").
func eachNamespace(ctx context.Context, cs kubernetes.Interface, o Options, done string, fn func(ns string, res *Result) (int, error)) (*Result, error) {
	res := &Result{}
	nss, err := namespaces(ctx, cs, o, res)
	if err != nil {
		return nil, err
	}
	for i, ns := range nss {
		if i > 0 && o.Pause > 0 && o.DryRun == cmdutil.DryRunNone {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(o.Pause):
			}
		}
		n, err := fn(ns, res)
		if err != nil {
			return res, err
		}
		res.Namespaces++
		o.progress("namespace %s: "+done+" (%d/%d namespaces)", ns, n, i+1, len(nss))
	}
	return res, nil
}

// restartOne sends the patch kubectl rollout restart sends. It is made
// once: a repeat after a lost answer sends the same restartedAt, which
// changes nothing, so no workload rolls twice.
func restartOne(ctx context.Context, cs kubernetes.Interface, k *workload.Kind, obj workload.Object, dry cmdutil.DryRunStrategy) error {
	if dry == cmdutil.DryRunClient {
		return nil
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	orig, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	modified, err := polymorphichelpers.ObjectRestarterFn(obj.DeepCopyObject())
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(orig, modified, k.New())
	if err != nil {
		return err
	}
	_, err = retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		_, err := k.Patch(ctx, workload.Clients{Kube: cs}, obj.GetNamespace(), obj.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: kubeapi.DryRunAll(dry)})
		return err
	})
	return err
}

// Pods deletes every pod (the documented fallback): each is re-created by
// its controller with a fresh token, but the service is interrupted.
func Pods(ctx context.Context, cs kubernetes.Interface, o Options) (*Result, error) {
	return eachNamespace(ctx, cs, o, "deleted %d pods", func(ns string, res *Result) (int, error) {
		pods, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.PodList, error) {
			return cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		})
		if err != nil {
			return 0, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		n := 0
		for _, p := range pods.Items {
			n += res.record(o, "pod/"+ns+"/"+p.Name, deletePod(ctx, cs, &p, o.DryRun))
		}
		return n, nil
	})
}

// deletePod deletes the pod that was listed and no other: a StatefulSet
// re-creates a pod under the same name, and a repeat after a lost answer must
// not delete that new pod, which already has a fresh token. The uid
// precondition makes such a repeat fail with a conflict instead.
func deletePod(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, dry cmdutil.DryRunStrategy) error {
	if dry == cmdutil.DryRunClient {
		return nil
	}
	uid := p.UID
	_, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		return cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, DryRun: kubeapi.DryRunAll(dry)})
	})
	// Not found, or a conflict (a pod of another uid under the name): the
	// listed pod is gone, deleted by an earlier try whose answer was lost or
	// by someone else, and what replaced it starts with a fresh token.
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
