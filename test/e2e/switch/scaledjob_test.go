package switche2e

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestSwitchAndRestoreAScaledJob, on KEDA's own CRD: switch rewrites a
// ScaledJob's job template (.spec.jobTargetRef.template) through the
// dynamic client, backs it up under its group, and reports it switched
// with its next Job using the projected token, as for a CronJob (KEDA
// makes Jobs from the template as they are needed, scale_jobs.go
// generateJobs); restore puts the template back as it was read.
func TestSwitchAndRestoreAScaledJob(t *testing.T) {
	cluster.InstallCRD(t, "scaledjobs.keda.sh", false)
	ns := cluster.CreateNamespace(t, "scaledjob")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	gvr := schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledjobs"}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	sj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
		"metadata": map[string]any{"name": "jobs"},
		"spec": map[string]any{
			"jobTargetRef": map[string]any{"template": map[string]any{"spec": map[string]any{
				"serviceAccountName": "app",
				"restartPolicy":      "Never",
				"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10",
					"volumeMounts": []any{map[string]any{"name": "tok", "mountPath": "/var/run/secrets/app", "readOnly": true}}}},
				"volumes": []any{map[string]any{"name": "tok", "secret": map[string]any{"secretName": "app-token"}}},
			}}},
			"triggers": []any{map[string]any{"type": "cron", "metadata": map[string]any{"timezone": "Etc/UTC", "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "1"}}},
		},
	}}
	if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, sj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := dyn.Resource(gvr).Namespace(ns).Get(ctx, "jobs", metav1.GetOptions{})
	tmplBefore, _, _ := unstructured.NestedMap(before.Object, "spec", "jobTargetRef", "template")

	dir := filepath.Join(t.TempDir(), "switch")
	r := run(t, "switch", "-n", ns, "--apply", "--yes", "--backup-dir", dir, "-o", "json").MustCode(t, 0)
	o := framework.WorkloadOutcomes(t, r.Stdout)["ScaledJob/jobs"]
	if o.Result != switcher.OutSwitched || o.Group != "keda.sh" || !strings.Contains(o.Message, "next Job") {
		t.Fatalf("switch outcome %+v (stderr %s)", o, r.Stderr)
	}
	after, _ := dyn.Resource(gvr).Namespace(ns).Get(ctx, "jobs", metav1.GetOptions{})
	vols, _, _ := unstructured.NestedSlice(after.Object, "spec", "jobTargetRef", "template", "spec", "volumes")
	if len(vols) != 1 || vols[0].(map[string]any)["projected"] == nil {
		t.Fatalf("volumes after switch: %v", vols)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "scaledjob.keda.sh", ns, "jobs@*.json")); len(matches) != 1 {
		t.Errorf("backup not filed under scaledjob.keda.sh: %v", matches)
	}

	r = run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	if o := framework.WorkloadOutcomes(t, r.Stdout)["ScaledJob/jobs"]; o.Result != switcher.OutRestored {
		t.Fatalf("restore outcome %+v (stderr %s)", o, r.Stderr)
	}
	restored, _ := dyn.Resource(gvr).Namespace(ns).Get(ctx, "jobs", metav1.GetOptions{})
	got, _, _ := unstructured.NestedMap(restored.Object, "spec", "jobTargetRef", "template")
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(tmplBefore)
	if !bytes.Equal(a, b) {
		t.Errorf("template after restore:\n%s\nbefore:\n%s", a, b)
	}
	r = run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	if o := framework.WorkloadOutcomes(t, r.Stdout)["ScaledJob/jobs"]; o.Result != backup.OutUnchanged {
		t.Errorf("second restore %+v", o)
	}
}
