package workloads

import (
	"context"
	"slices"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/restart"
)

// `rotate --restart workloads` (restart.Workloads) on real rollouts: each
// Deployment, StatefulSet and DaemonSet of the namespace is replaced by new
// pods, and every rollout completes as `kubectl rollout status` judges it.
func TestRestartWorkloadsRollsPods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "restart")
	cluster.CreateDeployment(t, ns, "web", 2, podTemplate("web"), nil)
	cluster.CreateStatefulSet(t, ns, "db", 1, podTemplate("db"))
	cluster.CreateDaemonSet(t, ns, "agent", podTemplate("agent"))
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
