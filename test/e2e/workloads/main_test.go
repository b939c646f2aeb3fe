// Package workloads proves the workloads rig (`hack/local-cluster.sh up
// --workloads`): real workload controllers and kube-scheduler with kwok's
// fake nodes roll Deployments, StatefulSets and DaemonSets out and run Jobs;
// the identity of a pod, which kwok never mounts, is proven with the
// TokenRequest the kubelet would send; and `rotate --restart workloads`
// (pkg/restart) really rolls pods.
package workloads

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: fmt.Sprintf("workloads-%d", os.Getpid()), Workloads: true},
		func(c *framework.Cluster) { cluster = c })
}

// A rollout on kwok takes a few seconds; the margin is for a loaded
// 2-core machine.
const rolloutTimeout = 2 * time.Minute

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
			// Pods leave at once when deleted: kwok's pod-delete stage
			// removes them, no grace period to wait for.
			TerminationGracePeriodSeconds: framework.Ptr[int64](0),
		},
	}
}

// pods lists the pods of app, deleted ones included.
func pods(t testing.TB, ns, app string) []corev1.Pod {
	t.Helper()
	list, err := cluster.Client.CoreV1().Pods(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: labels.Set{"app": app}.String()})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

func uids(ps []corev1.Pod) map[string]bool {
	out := map[string]bool{}
	for _, p := range ps {
		out[string(p.UID)] = true
	}
	return out
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPods waits until app has exactly n pods, none of them deleted, none
// in old (uids of earlier pods), each Running and Ready on a kwok node, and
// returns them.
func waitPods(t testing.TB, ns, app string, n int, old map[string]bool) []corev1.Pod {
	t.Helper()
	nodes := map[string]bool{}
	for _, n := range cluster.Nodes {
		nodes[n] = true
	}
	var got []corev1.Pod
	cluster.Eventually(t, rolloutTimeout, func() (bool, error) {
		got = pods(t, ns, app)
		var desc []string
		ok := len(got) == n
		for i := range got {
			p := &got[i]
			desc = append(desc, fmt.Sprintf("%s(%s on %q, ready %v, deleting %v, old %v)", p.Name, p.Status.Phase, p.Spec.NodeName, ready(p), p.DeletionTimestamp != nil, old[string(p.UID)]))
			if p.DeletionTimestamp != nil || old[string(p.UID)] || p.Status.Phase != corev1.PodRunning || !ready(p) || !nodes[p.Spec.NodeName] {
				ok = false
			}
		}
		return ok, fmt.Errorf("want %d new Running Ready pods on %v, have: %s", n, cluster.Nodes, strings.Join(desc, ", "))
	})
	return got
}
