package rolloutse2e

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestSwitchAndRestoreARollout: switch moves an Argo Rollout that mounts a
// legacy token Secret onto a projected token; the real Rollouts controller
// rolls it out and switch, following the Rollout by Argo's own rule (its
// phase, its string observedGeneration), reports it rolled out only once
// it is Healthy at the new generation. restore then puts the template back
// as the backup holds it, and the controller rolls that out too. With the
// Argo rule taken out of the table, switch reports changed-not-rolled
// instead, and this fails.
func TestSwitchAndRestoreARollout(t *testing.T) {
	rc := cluster.StartRolloutsController(t)
	ns := cluster.CreateNamespace(t, "switchro")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ro := canaryRollout("web", map[string]any{
		"serviceAccountName": "app",
		"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10",
			"volumeMounts": []any{map[string]any{"name": "tok", "mountPath": "/var/run/secrets/app", "readOnly": true}}}},
		"volumes":                       []any{map[string]any{"name": "tok", "secret": map[string]any{"secretName": "app-token"}}},
		"terminationGracePeriodSeconds": int64(0),
	})
	created, err := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Create(ctx, ro, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cluster.WaitRolloutHealthy(t, ns, "web", rolloutTimeout)
	before, _ := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
	templateBefore, _, _ := unstructured.NestedMap(before.Object, "spec", "template")

	dir := filepath.Join(t.TempDir(), "switch")
	start := time.Now()
	r := run(t, "switch", "rollout.argoproj.io/web", "-n", ns, "--apply", "--yes", "--backup-dir", dir, "--timeout", "2m", "-o", "json").MustCode(t, 0)
	o := framework.WorkloadOutcomes(t, r.Stdout)["Rollout/web"]
	if o.Result != switcher.OutSwitched || o.Group != "argoproj.io" || !strings.Contains(o.Message, "rolled out") {
		t.Fatalf("switch outcome %+v, want switched and rolled out (stderr %s)", o, r.Stderr)
	}
	t.Logf("switch to rolled out: %s", time.Since(start).Round(time.Millisecond))
	after, _ := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
	if phase, msg := framework.RolloutPhase(after); phase != "Healthy" || after.GetGeneration() <= created.GetGeneration() {
		t.Fatalf("after switch reported it rolled out, the Rollout is %s (%s) at generation %d", phase, msg, after.GetGeneration())
	}
	vols, _, _ := unstructured.NestedSlice(after.Object, "spec", "template", "spec", "volumes")
	if len(vols) != 1 || vols[0].(map[string]any)["projected"] == nil {
		t.Fatalf("volumes after switch: %v", vols)
	}
	// The pods of the current ReplicaSet are the projected template's.
	hash, _, _ := unstructured.NestedString(after.Object, "status", "currentPodHash")
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "rollouts-pod-template-hash=" + hash})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Spec.Volumes[0].Projected == nil {
		t.Fatalf("pods of the new revision: %v, %v", pods, err)
	}

	r = run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	if o := framework.WorkloadOutcomes(t, r.Stdout)["Rollout/web"]; o.Result != switcher.OutRestored {
		t.Fatalf("restore outcome %+v (stderr %s)", o, r.Stderr)
	}
	restored, _ := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
	got, _, _ := unstructured.NestedMap(restored.Object, "spec", "template")
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(templateBefore)
	if !bytes.Equal(a, b) {
		t.Fatalf("template after restore:\n%s\nbefore switch:\n%s", a, b)
	}
	cluster.WaitRolloutHealthy(t, ns, "web", rolloutTimeout)
	// A second restore finds it as backed up.
	r = run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	if o := framework.WorkloadOutcomes(t, r.Stdout)["Rollout/web"]; o.Result != backup.OutUnchanged {
		t.Errorf("second restore outcome %+v", o)
	}
	if !rc.Running() {
		t.Fatalf("rollouts-controller exited; log %s", rc.Log)
	}
}

// run executes `kubectl bound-token ARGS` in-process.
func run(t *testing.T, args ...string) framework.Result {
	t.Helper()
	return framework.Run(&bytes.Buffer{}, cluster.Kubeconfig, args...)
}
