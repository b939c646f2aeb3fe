package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// TestMigrateWavesRefuseBadFlags: the wave flags go together, with a
// real invalidation, before anything is read or made.
func TestMigrateWavesRefuseBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--apply", "--yes", "--wave-size", "2"}, "error: --wave-size and --wave-watch go together: each wave is watched before the next"},
		{[]string{"--apply", "--yes", "--wave-watch", "1m"}, "error: --wave-size and --wave-watch go together: each wave is watched before the next"},
		{[]string{"--apply", "--yes", "--wave-size", "0", "--wave-watch", "1m"}, "error: --wave-size 0: use at least 1"},
		{[]string{"--apply", "--yes", "--wave-size", "2", "--wave-watch", "0s"}, "error: --wave-watch 0s: use a positive duration such as 10m"},
		{[]string{"--apply", "--yes", "--wave-size", "2", "--wave-watch", "-1m"}, "error: --wave-watch -1m0s: use a positive duration such as 10m"},
		{[]string{"--wave-size", "2", "--wave-watch", "1m"}, "error: --wave-size and --wave-watch only make sense with --apply"},
		{[]string{"--apply", "--yes", "--mode", "delete", "--wave-size", "2", "--wave-watch", "1m"}, "error: --wave-size: waves invalidate; --mode delete is not watched (no guard restores a deleted Secret)"},
		{[]string{"--apply", "--dry-run=server", "--wave-size", "2", "--wave-watch", "1m"}, "error: --wave-size: a dry run changes nothing to watch; drop --dry-run or the waves"},
		{[]string{"--apply", "--yes", "--revoke", "--wave-size", "2", "--wave-watch", "1m"}, "error: --wave-size: a revocation is never guarded and is meant at once; drop --revoke or the waves"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Chdir(t.TempDir())
			cs := fake.NewSimpleClientset()
			out, errOut, code := run(t, cmdRun{cmd: fakes{client: cs}.migrate}, "", append([]string{"migrate"}, tc.args...)...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if diff := cmp.Diff(tc.want+"\n", errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if out != "" || len(cs.Actions()) != 0 {
				t.Errorf("a refused run printed %q and sent %v", out, cs.Actions())
			}
			if entries, _ := os.ReadDir("."); len(entries) != 0 {
				t.Errorf("a refused run made %v", entries)
			}
		})
	}
}

// TestMigrateWavesJSONIsOneDocument: quiet waves, one Secret each, run to
// the end; -o json is one LegacyTokenMigration with the waves, each
// Secret once with its own wave's outcome; no wave line on stderr off a
// terminal.
func TestMigrateWavesJSONIsOneDocument(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tok := func(name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "5",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"}, CreationTimestamp: metav1.NewTime(now.AddDate(-3, 0, 0))},
			Type: corev1.SecretTypeServiceAccountToken}
	}
	cs := fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: legacy.TrackingNamespace, Name: legacy.TrackingConfigMap},
			Data: map[string]string{"since": now.AddDate(0, 0, -400).Format("2006-01-02")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}},
		tok("tok"), tok("tok2"))
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	dir := filepath.Join(t.TempDir(), "b")
	out, errOut, code := run(t, cmdRun{cmd: fakes{client: cs, metadata: secretMetadata(t, cs), now: now}.migrate}, "",
		"migrate", "--apply", "--yes", "--backup-dir", dir, "-o", "json", "--wave-size", "1", "--wave-watch", "50ms")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	var doc struct {
		Kind  string
		Items []backup.Outcome
		Waves []guard.Wave
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil || dec.More() {
		t.Fatalf("not one JSON document (%v):\n%s", err, out)
	}
	if doc.Kind != "LegacyTokenMigration" || len(doc.Waves) != 2 || len(doc.Items) != 2 {
		t.Fatalf("document %+v", doc)
	}
	for i, w := range doc.Waves {
		if w.Result != guard.WaveQuiet || len(w.Secrets) != 1 || w.Number != i+1 {
			t.Errorf("wave %+v", w)
		}
	}
	for _, it := range doc.Items {
		if it.Result != legacy.OutInvalidated {
			t.Errorf("item %+v", it)
		}
	}
	if strings.Contains(errOut, "wave 1") {
		t.Errorf("wave progress off a terminal:\n%s", errOut)
	}
}
