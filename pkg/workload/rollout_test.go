package workload

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestRolloutOf(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	for _, c := range []struct {
		name       string
		obj        Object
		next, held string
		hint       string
	}{
		{"deployment", &appsv1.Deployment{}, "", "", ""},
		{"paused deployment", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Paused: true}}, "", "the Deployment is paused", "rollout resume"},
		{"statefulset rolling", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}}}, "", "", ""},
		{"statefulset OnDelete", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}}, "", "OnDelete", ""},
		{"daemonset rolling", &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}}}, "", "", ""},
		{"daemonset OnDelete", &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}}}, "", "OnDelete", ""},
		{"cronjob", &batchv1.CronJob{}, "Job", "", ""},
		{"replicaset", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: appsv1.ReplicaSetSpec{Selector: sel}}, "", "a ReplicaSet never replaces running pods", "delete pods -n ns -l 'app=x'"},
		{"replicationcontroller", &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "x"}}}, "", "a ReplicationController never replaces running pods", "delete pods -n ns -l 'app=x'"},
	} {
		r := RolloutOf(c.obj)
		if r.Next != c.next || (c.held == "") != (r.Held == "") || !strings.Contains(r.Held, c.held) || (c.hint == "") != (r.Hint == "") || !strings.Contains(r.Hint, c.hint) {
			t.Errorf("%s: %+v, want next %q, held %q, hint %q", c.name, r, c.next, c.held, c.hint)
		}
	}
}

func TestRolloutStatusOfADeployment(t *testing.T) {
	d := func(gen, observed int64, replicas, updated, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", Generation: gen},
			Spec:   appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: updated, UpdatedReplicas: updated, AvailableReplicas: available, ReadyReplicas: available}}
	}
	if msg, done, err := RolloutStatus(d(2, 2, 3, 3, 3)); err != nil || !done || !strings.Contains(msg, "successfully rolled out") {
		t.Errorf("rolled out: %q %v %v", msg, done, err)
	}
	if msg, done, err := RolloutStatus(d(2, 2, 3, 1, 1)); err != nil || done || !strings.Contains(msg, "1 out of 3 new replicas") {
		t.Errorf("rolling: %q %v %v", msg, done, err)
	}
	if msg, done, err := RolloutStatus(d(3, 2, 3, 3, 3)); err != nil || done || !strings.Contains(msg, "Waiting for deployment spec update") {
		t.Errorf("not observed: %q %v %v", msg, done, err)
	}
	if _, _, err := RolloutStatus(&appsv1.ReplicaSet{}); err == nil {
		t.Error("a ReplicaSet's rollout status was judged")
	}
}

func TestHistory(t *testing.T) {
	rs := func(owner string, replicas *int32) *appsv1.ReplicaSet {
		r := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: replicas}}
		if owner != "" {
			r.ObjectMeta = owned(owner, true)
		}
		return r
	}
	for name, c := range map[string]struct {
		obj  Object
		want bool
	}{
		"deployment's at 0":          {rs("Deployment", ptr.To[int32](0)), true},
		"deployment's at 1":          {rs("Deployment", ptr.To[int32](1)), false},
		"deployment's, replicas nil": {rs("Deployment", nil), false},
		"other owner's at 0":         {rs("Other", ptr.To[int32](0)), false},
		"argo rollout's at 0":        {rs("Rollout", ptr.To[int32](0)), true},
		"argo rollout's at 2":        {rs("Rollout", ptr.To[int32](2)), false},
		"ownerless at 0":             {rs("", ptr.To[int32](0)), false},
		"not a replicaset":           {&appsv1.Deployment{ObjectMeta: owned("Deployment", true), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)}}, false},
	} {
		if got := History(c.obj); got != c.want {
			t.Errorf("%s: History = %v, want %v", name, got, c.want)
		}
	}
	notController := &appsv1.ReplicaSet{ObjectMeta: owned("Deployment", false), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0)}}
	if History(notController) {
		t.Error("a ReplicaSet a Deployment owns without controlling it is history")
	}
}
