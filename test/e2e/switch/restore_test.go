package switche2e

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	run(t, "switch", "-n", ns, "--apply", "--yes", "--backup-dir", dir).mustCode(t, 0)

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"edited":"by-someone"}}}}}`)
	if _, err := cluster.Client.AppsV1().Deployments(ns).Patch(ctx, "edited", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	editedBefore := templateJSON(t, "Deployment", ns, "edited")
	r := run(t, "restore", "--from", dir, "-o", "json").mustCode(t, 1)
	got := outcomes(t, r.stdout)
	wantResult(t, got, "Deployment/edited", backup.OutSkipChanged)
	wantResult(t, got, "Deployment/kept", "template-restored")
	if !bytes.Equal(templateJSON(t, "Deployment", ns, "edited"), editedBefore) {
		t.Fatal("a template changed since the switch was overwritten")
	}
	if !bytes.Equal(templateJSON(t, "Deployment", ns, "kept"), keptBefore) {
		t.Fatal("kept: not back byte for byte")
	}
}
