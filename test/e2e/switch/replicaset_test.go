package switche2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// A ReplicaSet without an owner and a ReplicationController are switched
// but have no rollout: switch reports them changed-not-rolled (exit 1),
// naming the command that recreates their pods; their running pods keep
// reading the Secret until then, and pods recreated afterwards do not. A
// Deployment's own ReplicaSet is not listed (its Deployment is). Restore
// puts both templates back byte for byte.
func TestReplicaSetAndReplicationController(t *testing.T) {
	ns := cluster.CreateNamespace(t, "rsrc")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"},
		Spec: appsv1.ReplicaSetSpec{Replicas: framework.Ptr[int32](1), Selector: framework.Selector("rs"), Template: template("rs", podSpec("app", "app-token", nil, nil))}}
	if _, err := cluster.Client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rcT := template("rc", podSpec("app", "app-token", nil, nil))
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc"},
		Spec: corev1.ReplicationControllerSpec{Replicas: framework.Ptr[int32](1), Selector: map[string]string{"app": "rc"}, Template: &rcT}}
	if _, err := cluster.Client.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createDeployment(t, ns, "web", 1, podSpec("app", "app-token", nil, nil), nil)
	cluster.WaitRolledOut(t, "Deployment", ns, "web", rolloutTimeout)
	podsOf := func(app string) []string {
		var out []string
		for _, p := range podsReading(t, ns, "app-token") {
			if strings.HasPrefix(p, app+"-") {
				out = append(out, p)
			}
		}
		return out
	}
	cluster.Eventually(t, time.Minute, func() (bool, error) {
		return len(podsOf("rs")) == 1 && len(podsOf("rc")) == 1, nil
	})
	kinds := [][2]string{{"ReplicaSet", "rs"}, {"ReplicationController", "rc"}}
	before := map[string][]byte{}
	for _, k := range kinds {
		before[k[1]] = templateJSON(t, k[0], ns, k[1])
	}

	plan := run(t, "switch", "-n", ns).MustCode(t, 0)
	for _, head := range []string{"replicaset/rs -n " + ns + ": switchable", "replicationcontroller/rc -n " + ns + ": switchable", "deployment/web -n " + ns + ": switchable"} {
		if !strings.Contains(plan.Stdout, head) {
			t.Fatalf("plan lacks %q:\n%s", head, plan.Stdout)
		}
	}
	if n := strings.Count(plan.Stdout, "replicaset/"); n != 1 {
		t.Fatalf("the plan lists %d ReplicaSets; the Deployment's own must not be one:\n%s", n, plan.Stdout)
	}

	dir := t.TempDir() + "/backup"
	r := run(t, "switch", "-n", ns, "--apply", "--yes", "--backup-dir", dir, "-o", "json").MustCode(t, 1)
	got := framework.WorkloadOutcomes(t, r.Stdout)
	wantResult(t, got, "Deployment/web", switcher.OutSwitched)
	if len(got) != 3 {
		t.Fatalf("%d outcomes, want 3: %+v", len(got), got)
	}
	hints := map[string]string{"rs": "kubectl delete pods -n " + ns + " -l 'app=rs'", "rc": "kubectl delete pods -n " + ns + " -l 'app=rc'"}
	for _, k := range kinds {
		o := wantResult(t, got, k[0]+"/"+k[1], switcher.OutNotRolled)
		if !strings.Contains(o.Message, "keep the old token") || !strings.Contains(o.Message, hints[k[1]]) {
			t.Errorf("%s: %s", k[1], o.Message)
		}
		if p := podTemplateOf(t, k[0], ns, k[1]); p.Spec.Volumes[0].Projected == nil {
			t.Errorf("%s: template not switched", k[1])
		}
	}
	// Not replaced: the running pods still read the Secret, and the run
	// says so.
	if len(podsOf("rs")) != 1 || len(podsOf("rc")) != 1 {
		t.Fatalf("the running pods of rs and rc were replaced (%v, %v); they have no rollout", podsOf("rs"), podsOf("rc"))
	}
	if !strings.Contains(r.Stderr, "Still read in "+ns+": app-token") {
		t.Errorf("the run does not say the Secret is still read:\n%s", r.Stderr)
	}

	// The named command recreates them from the new template.
	for _, app := range []string{"rs", "rc"} {
		if err := cluster.Client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: framework.Ptr[int64](0)},
			metav1.ListOptions{LabelSelector: "app=" + app}); err != nil {
			t.Fatal(err)
		}
	}
	cluster.Eventually(t, time.Minute, func() (bool, error) {
		l, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		projected := 0
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && len(p.Spec.Volumes) > 0 && p.Spec.Volumes[0].Projected != nil {
				projected++
			}
		}
		return len(podsReading(t, ns, "app-token")) == 0 && projected == 3, nil
	})

	res := run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	back := framework.WorkloadOutcomes(t, res.Stdout)
	for _, k := range kinds {
		wantResult(t, back, k[0]+"/"+k[1], switcher.OutRestored)
		if !bytes.Equal(templateJSON(t, k[0], ns, k[1]), before[k[1]]) {
			t.Errorf("%s: template not back byte for byte", k[1])
		}
	}
}
