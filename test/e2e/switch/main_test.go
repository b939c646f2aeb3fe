// Package switche2e tests `switch` on the workloads rig (real workload
// controllers, kube-scheduler, kwok nodes) with JSON storage, so that a
// legacy Secret can be made old and `migrate --apply` can then invalidate
// the Secrets that switch freed.
package switche2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

// Use is tracked since long ago, as on a cluster upgraded to 1.28 long
// since: a backdated unused Secret's verdict is then invalidate.
const trackedDays = 400

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: fmt.Sprintf("switch-%d", os.Getpid()), Workloads: true, JSONStorage: true,
		KCMArgs: []string{"--kube-api-qps=500", "--kube-api-burst=1000"}, TrackingSince: framework.DaysAgo(trackedDays)},
		func(c *framework.Cluster) { cluster = c })
}

// run executes `kubectl bound-token ARGS` in-process.
func run(t *testing.T, args ...string) framework.Result {
	t.Helper()
	return framework.Run(&bytes.Buffer{}, cluster.Kubeconfig, args...)
}

func wantResult(t *testing.T, got map[string]backup.Outcome, key, result string) backup.Outcome {
	t.Helper()
	o, ok := got[key]
	if !ok || o.Result != result {
		t.Fatalf("%s: outcome %+v, want %s (all: %+v)", key, o, result, got)
	}
	return o
}

const rolloutTimeout = 2 * time.Minute

// podSpec runs as sa and mounts Secret secret at /var/run/secrets/app.
func podSpec(sa, secret string, items []corev1.KeyToPath, mode *int32) corev1.PodSpec {
	return corev1.PodSpec{
		ServiceAccountName: sa,
		Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
			VolumeMounts: []corev1.VolumeMount{{Name: "tok", MountPath: "/var/run/secrets/app", ReadOnly: true}}}},
		Volumes: []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, Items: items, DefaultMode: mode}}}},
		TerminationGracePeriodSeconds: framework.Ptr[int64](0),
	}
}

func template(app string, spec corev1.PodSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: spec}
}

func createDeployment(t *testing.T, ns, name string, replicas int32, spec corev1.PodSpec, mutate func(*appsv1.Deployment)) {
	t.Helper()
	cluster.CreateDeployment(t, ns, name, replicas, template(name, spec), mutate)
}

func createCronJob(t *testing.T, ns, name string, spec corev1.PodSpec) {
	t.Helper()
	spec.RestartPolicy = corev1.RestartPolicyNever
	c := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: batchv1.CronJobSpec{
		// Once a year: no Job (and no pod reading the Secret) in the test.
		Schedule:    "0 0 1 1 *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(name, spec)}},
	}}
	if _, err := cluster.Client.BatchV1().CronJobs(ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// templateJSON reads a workload's pod template as JSON, the bytes
// restore must bring back.
func templateJSON(t *testing.T, kind, ns, name string) []byte {
	t.Helper()
	var tmpl any
	switch kind {
	case "Deployment":
		d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl = d.Spec.Template
	case "StatefulSet":
		d, err := cluster.Client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl = d.Spec.Template
	case "DaemonSet":
		d, err := cluster.Client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl = d.Spec.Template
	case "ReplicaSet":
		d, err := cluster.Client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl = d.Spec.Template
	case "ReplicationController":
		d, err := cluster.Client.CoreV1().ReplicationControllers(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl = d.Spec.Template
	case "CronJob":
		d, err := cluster.Client.BatchV1().CronJobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl = d.Spec.JobTemplate.Spec.Template
	default:
		t.Fatalf("kind %s", kind)
	}
	data, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func podTemplateOf(t *testing.T, kind, ns, name string) corev1.PodTemplateSpec {
	t.Helper()
	var tmpl corev1.PodTemplateSpec
	if err := json.Unmarshal(templateJSON(t, kind, ns, name), &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// podsReading lists the pods of ns, in any phase, that name secret
// through any reference the platform's cleaner counts.
func podsReading(t *testing.T, ns, secret string) []string {
	t.Helper()
	l, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range l.Items {
		workload.VisitSecretNames(&l.Items[i].Spec, func(n, _ string) {
			if n == secret {
				out = append(out, l.Items[i].Name)
			}
		})
	}
	return out
}

func backupDirs(t *testing.T) (string, string) {
	d := t.TempDir()
	return filepath.Join(d, "switch-backup"), filepath.Join(d, "migrate-backup")
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
