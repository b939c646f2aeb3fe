package workloads

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A Deployment of 2 replicas rolls out as `kubectl rollout status` judges
// it; a change of its pod template makes a new ReplicaSet, and the old pods
// are gone (deleted by the ReplicaSet controller, removed by kwok).
func TestDeploymentRollsOutAndRolls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "deploy")
	cluster.CreateDeployment(t, ns, "web", 2, podTemplate("web"), nil)
	cluster.WaitRolledOut(t, "Deployment", ns, "web", rolloutTimeout)
	d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := d.Status
	if st.ObservedGeneration != d.Generation || st.Replicas != 2 || st.UpdatedReplicas != 2 || st.ReadyReplicas != 2 || st.AvailableReplicas != 2 {
		t.Fatalf("rolled out, yet status %+v (generation %d)", st, d.Generation)
	}
	first := waitPods(t, ns, "web", 2, nil)
	firstRS := rsHashes(t, ns, "web")

	// Roll it: a new pod template.
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"rig/rev":"2"}}}}}`)
	if _, err := cluster.Client.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.WaitRolledOut(t, "Deployment", ns, "web", rolloutTimeout)
	second := waitPods(t, ns, "web", 2, uids(first))
	rs := rsHashes(t, ns, "web")
	if len(rs) != 2 {
		t.Fatalf("ReplicaSets after one template change: %v, want the first and a new one", rs)
	}
	for hash, replicas := range rs {
		if _, was := firstRS[hash]; was && replicas != 0 {
			t.Errorf("old ReplicaSet %s still wants %d replicas", hash, replicas)
		}
		if _, was := firstRS[hash]; !was && replicas != 2 {
			t.Errorf("new ReplicaSet %s wants %d replicas, want 2", hash, replicas)
		}
	}
	for _, p := range second {
		if _, old := firstRS[p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]]; old || p.Annotations["rig/rev"] != "2" {
			t.Errorf("pod %s is of the old template (hash %s)", p.Name, p.Labels[appsv1.DefaultDeploymentUniqueLabelKey])
		}
	}
}

// rsHashes maps the pod-template-hash of each ReplicaSet of app to its
// desired replicas.
func rsHashes(t testing.TB, ns, app string) map[string]int32 {
	t.Helper()
	list, err := cluster.Client.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, rs := range list.Items {
		out[rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]] = *rs.Spec.Replicas
	}
	return out
}

// A StatefulSet and a DaemonSet (one pod on each kwok node) roll out, and
// roll again to new pods when their template changes.
func TestStatefulSetAndDaemonSetRollOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "sts-ds")
	cluster.CreateStatefulSet(t, ns, "db", 2, podTemplate("db"))
	cluster.CreateDaemonSet(t, ns, "agent", podTemplate("agent"))
	cluster.WaitRolledOut(t, "StatefulSet", ns, "db", rolloutTimeout)
	cluster.WaitRolledOut(t, "DaemonSet", ns, "agent", rolloutTimeout)
	db := waitPods(t, ns, "db", 2, nil)
	if db[0].Name != "db-0" || db[1].Name != "db-1" {
		t.Errorf("StatefulSet pods %s, %s; want db-0, db-1", db[0].Name, db[1].Name)
	}
	agents := waitPods(t, ns, "agent", len(cluster.Nodes), nil)
	onNode := map[string]bool{}
	for _, p := range agents {
		onNode[p.Spec.NodeName] = true
	}
	if len(onNode) != len(cluster.Nodes) {
		t.Errorf("DaemonSet pods on nodes %v, want one on each of %v", onNode, cluster.Nodes)
	}

	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"rig/rev":"2"}}}}}`)
	if _, err := cluster.Client.AppsV1().StatefulSets(ns).Patch(ctx, "db", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.AppsV1().DaemonSets(ns).Patch(ctx, "agent", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.WaitRolledOut(t, "StatefulSet", ns, "db", rolloutTimeout)
	cluster.WaitRolledOut(t, "DaemonSet", ns, "agent", rolloutTimeout)
	sts, err := cluster.Client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range waitPods(t, ns, "db", 2, uids(db)) {
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] != sts.Status.UpdateRevision {
			t.Errorf("pod %s at revision %s, want %s", p.Name, p.Labels[appsv1.ControllerRevisionHashLabelKey], sts.Status.UpdateRevision)
		}
	}
	for _, p := range waitPods(t, ns, "agent", len(cluster.Nodes), uids(agents)) {
		if p.Annotations["rig/rev"] != "2" {
			t.Errorf("DaemonSet pod %s is of the old template", p.Name)
		}
	}
}

// A Job's pods run to completion under kwok's pod-complete stage.
func TestJobCompletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "job")
	tmpl := podTemplate("batch")
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := cluster.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec:       batchv1.JobSpec{Completions: framework.Ptr[int32](2), Parallelism: framework.Ptr[int32](2), Template: tmpl},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitJobComplete(t, ns, "once", 2, rolloutTimeout)
}

func waitJobComplete(t testing.TB, ns, name string, succeeded int32, timeout time.Duration) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	cluster.Eventually(t, timeout, func() (bool, error) {
		var err error
		if job, err = cluster.Client.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return job.Status.Succeeded == succeeded, nil
			}
		}
		return false, nil
	})
	if job.Status.Succeeded != succeeded || job.Status.Failed != 0 {
		t.Fatalf("job %s/%s: succeeded %d, failed %d; want %d, 0", ns, name, job.Status.Succeeded, job.Status.Failed, succeeded)
	}
	return job
}

// The CronJob controller starts a Job on schedule, which completes. The
// schedule has minute granularity: this waits for the next minute.
func TestCronJobRunsAJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "cron")
	tmpl := podTemplate("tick")
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := cluster.Client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var jobName string
	cluster.Eventually(t, 100*time.Second, func() (bool, error) {
		jobs, err := cluster.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(jobs.Items) == 0 {
			return false, err
		}
		j := jobs.Items[0]
		if ref := metav1.GetControllerOf(&j); ref == nil || ref.Kind != "CronJob" || ref.Name != "tick" {
			t.Fatalf("job %s is not the CronJob's: owner %v", j.Name, ref)
		}
		jobName = j.Name
		return true, nil
	})
	waitJobComplete(t, ns, jobName, 1, rolloutTimeout)
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		cj, err := cluster.Client.BatchV1().CronJobs(ns).Get(ctx, "tick", metav1.GetOptions{})
		return err == nil && cj.Status.LastSuccessfulTime != nil, err
	})
}

// root-ca-cert-publisher puts the cluster CA into every new namespace as
// ConfigMap kube-root-ca.crt, key ca.crt (pkg/controller/certificates/
// rootcacertpublisher/publisher.go, syncNamespace), the source projected
// token volumes read ca.crt from.
func TestKubeRootCAInNewNamespace(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "rootca")
	want, err := os.ReadFile(cluster.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !bytes.Equal([]byte(cm.Data["ca.crt"]), want) {
			t.Fatalf("kube-root-ca.crt ca.crt is not the cluster CA:\n%s", cm.Data["ca.crt"])
		}
		return true, nil
	})
}
