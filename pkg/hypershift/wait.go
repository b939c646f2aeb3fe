package hypershift

import (
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"

	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

// DeploymentGVR is apps/v1 deployments.
var DeploymentGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// ErrRejected: HyperShift set ValidConfiguration=False for the patched
// generation (the message says why).
var ErrRejected = errors.New("HyperShift rejected the configuration")

// WaitRollout follows a rotation Rotate made (with Follow): it watches the
// HostedCluster until ValidConfiguration is True for the patched generation
// (observedGeneration >= res.Generation), failing at once when it is False,
// then watches the hosted kube-apiserver Deployment until a generation newer
// than res.KASGeneration is rolled out as `kubectl rollout status` judges it
// (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go,
// DeploymentStatusViewer.Status: observedGeneration caught up, every replica
// updated, no old ones left, the updated ones available). Watches are
// resumed when the server closes them (client-go tools/watch,
// UntilWithSync). progress gets one line per change; ctx bounds the wait.
func WaitRollout(ctx context.Context, dyn dynamic.Interface, res *Result, progress func(string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	ns, name, _ := strings.Cut(res.HostedCluster, "/")
	last := ""
	err := until(ctx, dyn, HostedClusterGVR, ns, name, func(hc *unstructured.Unstructured) (bool, error) {
		c := GetCondition(hc, ValidConfiguration)
		if c == nil || c.ObservedGeneration < res.Generation {
			return false, nil
		}
		if c.Status == "False" {
			return false, fmt.Errorf("%w: hostedcluster %s has %s=False: %s", ErrRejected, res.HostedCluster, ValidConfiguration, text.OneLine(c.Message, 300))
		}
		if c.Status == "True" {
			progress(fmt.Sprintf("hostedcluster %s: %s=True at generation %d", res.HostedCluster, ValidConfiguration, c.ObservedGeneration))
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	viewer := &polymorphichelpers.DeploymentStatusViewer{}
	return until(ctx, dyn, DeploymentGVR, res.ControlPlaneNamespace, KASDeployment, func(d *unstructured.Unstructured) (bool, error) {
		if d.GetGeneration() <= res.KASGeneration {
			return false, nil
		}
		msg, done, err := viewer.Status(d, 0)
		if err != nil {
			return false, fmt.Errorf("deployment %s/%s: %w", res.ControlPlaneNamespace, KASDeployment, err)
		}
		if msg = strings.TrimSpace(msg); msg != last {
			last = msg
			progress(fmt.Sprintf("%s (generation %d)", msg, d.GetGeneration()))
		}
		return done, nil
	})
}

// until watches one object (list+watch by name, resumed by an informer)
// until cond says done or fails.
func until(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string, cond func(*unstructured.Unstructured) (bool, error)) error {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	res := dyn.Resource(gvr).Namespace(ns)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return res.Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, fmt.Errorf("%s %s/%s was deleted", gvr.Resource, ns, name)
		}
		obj, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || obj.GetName() != name {
			return false, nil
		}
		return cond(obj)
	})
	if errors.Is(err, watchtools.ErrWatchClosed) || isTimeout(err) {
		return context.DeadlineExceeded
	}
	return err
}

func isTimeout(err error) bool {
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out waiting for the condition"))
}
