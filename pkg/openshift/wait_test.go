package openshift

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

func kas(rv string, st KubeAPIServerStatus) *unstructured.Unstructured {
	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "operator.openshift.io/v1", "kind": "KubeAPIServer", "status": m}}
	u.SetName(ClusterName)
	u.SetResourceVersion(rv)
	return u
}

// A watch that ends with 410 Gone makes the waiter GET the object again
// rather than resume from the expired resourceVersion (pure unit test of
// that branch; the e2e tests cover server-closed watches on a real server).
func TestWaiterRelistsOnGone(t *testing.T) {
	inProgress := KubeAPIServerStatus{LatestAvailableRevision: 12, NodeStatuses: nodes(11, 11),
		Conditions: []Condition{{Type: CondNodeInstallerProgressing, Status: "True", Message: "2 nodes are at revision 11; 0 nodes have achieved new revision 12"}}}
	finished := KubeAPIServerStatus{LatestAvailableRevision: 12, NodeStatuses: nodes(12, 12),
		Conditions: []Condition{done(12, "2 nodes are at revision 12")}}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{KubeAPIServerGVR: "KubeAPIServerList"})
	var gets, watches atomic.Int32
	dyn.PrependReactor("get", "kubeapiservers", func(clienttesting.Action) (bool, runtime.Object, error) {
		if gets.Add(1) == 1 {
			return true, kas("5", inProgress), nil
		}
		return true, kas("9", finished), nil
	})
	dyn.PrependWatchReactor("kubeapiservers", func(a clienttesting.Action) (bool, watch.Interface, error) {
		watches.Add(1)
		fw := watch.NewFake()
		go func() {
			st := apierrors.NewResourceExpired("too old resource version: 5 (8)").Status()
			fw.Error(&st)
		}()
		return true, fw, nil
	})
	var reasons []string
	w := &Waiter{Client: dyn, SinceRevision: 11, RetryDelay: time.Millisecond, OnReconnect: func(r string) { reasons = append(reasons, r) }}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := w.Wait(ctx)
	if err != nil || !p.Done {
		t.Fatalf("done=%v err=%v", p.Done, err)
	}
	if gets.Load() != 2 || watches.Load() != 1 || len(reasons) != 1 {
		t.Fatalf("gets %d watches %d reconnects %v", gets.Load(), watches.Load(), reasons)
	}
}

func TestWaiterNotOpenShift(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{KubeAPIServerGVR: "KubeAPIServerList"})
	dyn.PrependReactor("get", "kubeapiservers", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{}, "")
	})
	_, err := (&Waiter{Client: dyn}).Wait(context.Background())
	if err != ErrNotOpenShift {
		t.Fatal(err)
	}
}
