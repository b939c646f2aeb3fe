package openshift

import (
	"context"
	"strings"
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

// A watch that ends with 410 Gone makes the waiter LIST again and watch from
// the list's resourceVersion rather than the expired one (the e2e test
// TestWaitReadsAgainWhenResourceVersionExpired does this on a real server
// after an etcd compaction).
func TestWaiterRelistsOnGone(t *testing.T) {
	inProgress := KubeAPIServerStatus{LatestAvailableRevision: 12, NodeStatuses: nodes(11, 11),
		Conditions: []Condition{{Type: CondNodeInstallerProgressing, Status: "True", Message: "2 nodes are at revision 11; 0 nodes have achieved new revision 12"}}}
	finished := KubeAPIServerStatus{LatestAvailableRevision: 12, NodeStatuses: nodes(12, 12),
		Conditions: []Condition{done(12, "2 nodes are at revision 12")}}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{KubeAPIServerGVR: "KubeAPIServerList"})
	var lists, watches atomic.Int32
	dyn.PrependReactor("list", "kubeapiservers", func(clienttesting.Action) (bool, runtime.Object, error) {
		if lists.Add(1) == 1 {
			return true, listOf("6", kas("5", inProgress)), nil
		}
		return true, listOf("10", kas("9", finished)), nil
	})
	var watchedFrom []string
	dyn.PrependWatchReactor("kubeapiservers", func(a clienttesting.Action) (bool, watch.Interface, error) {
		watches.Add(1)
		watchedFrom = append(watchedFrom, a.(clienttesting.WatchActionImpl).WatchRestrictions.ResourceVersion)
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
	if lists.Load() != 2 || watches.Load() != 1 || len(reasons) != 1 {
		t.Fatalf("lists %d watches %d reconnects %v", lists.Load(), watches.Load(), reasons)
	}
	// The list's resourceVersion, not the object's.
	if len(watchedFrom) != 1 || watchedFrom[0] != "6" {
		t.Fatalf("watched from %q, want the list's resourceVersion 6", watchedFrom)
	}
}

func listOf(rv string, items ...*unstructured.Unstructured) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "operator.openshift.io/v1", "kind": "KubeAPIServerList"}}
	l.SetResourceVersion(rv)
	for _, it := range items {
		l.Items = append(l.Items, *it)
	}
	return l
}

func TestWaiterNotOpenShift(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{KubeAPIServerGVR: "KubeAPIServerList"})
	dyn.PrependReactor("list", "kubeapiservers", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{}, "")
	})
	_, err := (&Waiter{Client: dyn}).Wait(context.Background())
	if err != ErrNotOpenShift {
		t.Fatal(err)
	}
}

// The resource is served but the operator's object is missing.
func TestWaiterNoClusterObject(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{KubeAPIServerGVR: "KubeAPIServerList"})
	_, err := (&Waiter{Client: dyn}).Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "kubeapiservers.operator.openshift.io/cluster not found") {
		t.Fatal(err)
	}
}
