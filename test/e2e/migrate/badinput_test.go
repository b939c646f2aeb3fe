package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

func TestApplyRefusesUnusableBackupFolder(t *testing.T) {
	ns := cluster.CreateNamespace(t, "baddir")
	s := legacySecret(t, ns, "app", "app-token", false)

	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Tests run as root here, which reads any folder whatever its mode:
	// a file where the folder should be stands in for an unreadable one.
	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openDir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(openDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{notEmpty, "is not empty and holds no index.jsonl"},
		{aFile, "cannot be read"},
		{openDir, "writable by group or others"},
	} {
		r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", c.dir).MustCode(t, 2)
		oneLineError(t, r, c.want)
	}
	cur, _ := getSecret(t, ns, "app-token")
	if cur.ResourceVersion != s.ResourceVersion {
		t.Fatal("a refused run changed the Secret")
	}
	if b, _ := os.ReadFile(filepath.Join(notEmpty, "notes.txt")); string(b) != "mine" {
		t.Fatal("the user's file was changed")
	}
}

// invalidated returns a backup folder of an invalidate run over two Secrets.
func invalidated(t *testing.T) (ns, dir string) {
	t.Helper()
	ns = cluster.CreateNamespace(t, "tamper")
	legacySecret(t, ns, "app", "a-token", false)
	legacySecret(t, ns, "app", "b-token", false)
	dir = backupDir(t)
	run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", dir).MustCode(t, 0)
	return ns, dir
}

func backupFile(t *testing.T, dir, ns, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "secrets", ns, name+"@*.json"))
	if len(m) != 1 {
		t.Fatalf("want one backup file of %s, found %v", name, m)
	}
	return m[0]
}

func TestRestoreRefusesTamperedBackup(t *testing.T) {
	for _, c := range []struct {
		name, want string
		spoil      func(t *testing.T, ns, dir string)
	}{
		{"edited file", "does not match the sha256", func(t *testing.T, ns, dir string) {
			f := backupFile(t, dir, ns, "a-token")
			b, _ := os.ReadFile(f)
			if err := os.WriteFile(f, []byte(strings.Replace(string(b), "a-token", "a-tokeN", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"file replaced with another Secret's", "does not match the sha256", func(t *testing.T, ns, dir string) {
			b, _ := os.ReadFile(backupFile(t, dir, ns, "b-token"))
			if err := os.WriteFile(backupFile(t, dir, ns, "a-token"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing file", "is missing", func(t *testing.T, ns, dir string) {
			if err := os.Remove(backupFile(t, dir, ns, "b-token")); err != nil {
				t.Fatal(err)
			}
		}},
		{"planted symlink", "holds a symlink", func(t *testing.T, ns, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "secrets", ns, "extra.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"folder writable by others", "writable by group or others", func(t *testing.T, ns, dir string) {
			if err := os.Chmod(filepath.Join(dir, "secrets"), 0o777); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns, dir := invalidated(t)
			c.spoil(t, ns, dir)
			oneLineError(t, run(t, "restore", "--from", dir).MustCode(t, 2), c.want)
			for _, name := range []string{"a-token", "b-token"} {
				s, _ := getSecret(t, ns, name)
				if _, ok := s.Labels[legacy.LabelInvalidSince]; !ok {
					t.Fatalf("%s was restored from a refused backup", name)
				}
			}
		})
	}
}

func TestApplyWithoutDeletePermissionChangesNothing(t *testing.T) {
	ns := cluster.CreateNamespace(t, "rbac")
	s := legacySecret(t, ns, "app", "app-token", true)
	cluster.CreateServiceAccount(t, ns, "auditor")
	rbac := cluster.Client.RbacV1()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "auditor"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets", "serviceaccounts", "pods"}, Verbs: []string{"get", "list", "patch"}}},
	}
	if _, err := rbac.Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "auditor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "auditor"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "auditor", Namespace: ns}},
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "auditor.kubeconfig")
	run(t, "create", "auditor", "-n", ns, "--kubeconfig-out", kc).MustCode(t, 0)

	dir := backupDir(t)
	var r framework.Result
	// RBAC changes reach the authorizer's cache within moments.
	cluster.Eventually(t, 10*time.Second, func() (bool, error) {
		r = runAs(t, kc, "migrate", "-n", ns, "--apply", "--yes", "--mode", "delete", "--backup-dir", dir)
		return r.Code == 2 && strings.Contains(r.Stderr, "forbidden"), nil
	})
	oneLineError(t, r, "you may not delete secrets in namespace "+ns)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("a refused run created its backup folder")
	}
	cur, ok := getSecret(t, ns, "app-token")
	if !ok || cur.ResourceVersion != s.ResourceVersion {
		t.Fatal("the Secret was changed")
	}
	// The audit itself needs only list, which the role allows.
	runAs(t, kc, "migrate", "-n", ns).MustCode(t, 0)
}
