package workloads

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/restart"
)

// `rotate --restart workloads` (restart.Workloads) on real rollouts: each
// Deployment, StatefulSet and DaemonSet of the namespace is replaced by new
// pods, and every rollout completes as `kubectl rollout status` judges it.
func TestRestartWorkloadsRollsPods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "restart")
	if _, err := cluster.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptrTo[int32](2), Selector: selector("web"), Template: podTemplate("web")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptrTo[int32](1), Selector: selector("db"), Template: podTemplate("db")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec:       appsv1.DaemonSetSpec{Selector: selector("agent"), Template: podTemplate("agent")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	type wl struct {
		kind, name string
		n          int
	}
	all := []wl{{"Deployment", "web", 2}, {"StatefulSet", "db", 1}, {"DaemonSet", "agent", len(cluster.Nodes)}}
	before := map[string]map[string]bool{}
	for _, w := range all {
		cluster.WaitRolledOut(t, w.kind, ns, w.name, rolloutTimeout)
		before[w.name] = uids(waitPods(t, ns, w.name, w.n, nil))
	}

	res, err := restart.Workloads(ctx, cluster.Client, restart.Options{Namespaces: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"daemonset/" + ns + "/agent", "deployment/" + ns + "/web", "statefulset/" + ns + "/db"}
	got := slices.Sorted(slices.Values(res.Restarted))
	if !slices.Equal(got, want) || len(res.Failed) != 0 {
		t.Fatalf("restarted %v, failed %v; want %v", got, res.Failed, want)
	}
	for _, w := range all {
		cluster.WaitRolledOut(t, w.kind, ns, w.name, rolloutTimeout)
		for _, p := range waitPods(t, ns, w.name, w.n, before[w.name]) {
			if p.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
				t.Errorf("%s pod %s has no restartedAt annotation", w.kind, p.Name)
			}
		}
	}
}
