package switche2e

import (
	"bytes"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The backup is migrate's format (0700 folders, 0600 files); restore
// leaves alone a template that changed since the switch and puts back the
// others.
func TestRestoreRefusesATemplateChangedSinceTheSwitch(t *testing.T) {
	ns := cluster.CreateNamespace(t, "changed")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	createDeployment(t, ns, "kept", 0, podSpec("app", "app-token", nil, nil), nil)
	createDeployment(t, ns, "edited", 0, podSpec("app", "app-token", nil, nil), nil)
	keptBefore := templateJSON(t, "Deployment", ns, "kept")
	dir := filepath.Join(t.TempDir(), "backup")
	run(t, "switch", "-n", ns, "--apply", "--yes", "--backup-dir", dir).MustCode(t, 0)

	framework.AssertPrivate(t, dir)

	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"edited":"by-someone"}}}}}`)
	if _, err := cluster.Client.AppsV1().Deployments(ns).Patch(ctx, "edited", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	editedBefore := templateJSON(t, "Deployment", ns, "edited")
	r := run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 1)
	got := framework.WorkloadOutcomes(t, r.Stdout)
	wantResult(t, got, "Deployment/edited", backup.OutSkipChanged)
	wantResult(t, got, "Deployment/kept", "template-restored")
	if !bytes.Equal(templateJSON(t, "Deployment", ns, "edited"), editedBefore) {
		t.Fatal("a template changed since the switch was overwritten")
	}
	if !bytes.Equal(templateJSON(t, "Deployment", ns, "kept"), keptBefore) {
		t.Fatal("kept: not back byte for byte")
	}
}
