package switche2e

import (
	"bytes"
	"os"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// --apply --dry-run=server: the apiserver admits each patch and stores
// nothing; no backup folder is made. A caller who may read the workloads
// but not patch them is stopped by the access check before anything is
// asked, backed up or changed: exit 2, one line naming what is missing.
func TestServerDryRunAndForbidden(t *testing.T) {
	ns := cluster.CreateNamespace(t, "dry")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	createDeployment(t, ns, "web", 0, podSpec("app", "app-token", nil, nil), nil)
	before := templateJSON(t, "Deployment", ns, "web")
	cwd := t.TempDir()
	t.Chdir(cwd)
	noBackup := func(what string) {
		t.Helper()
		if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
			t.Fatalf("%s made %s in the working folder", what, entries[0].Name())
		}
		if !bytes.Equal(templateJSON(t, "Deployment", ns, "web"), before) {
			t.Fatalf("%s changed the template", what)
		}
	}

	r := run(t, "switch", "-n", ns, "--apply", "--dry-run=server", "-o", "json").MustCode(t, 0)
	if o := wantResult(t, framework.WorkloadOutcomes(t, r.Stdout), "Deployment/web", backup.OutWouldChange); !strings.Contains(o.Message, "server dry run accepted") {
		t.Fatalf("web: %+v", o)
	}
	noBackup("a server dry run")
	r = run(t, "switch", "-n", ns, "--apply", "--dry-run=server", "-o", "name").MustCode(t, 0)
	if strings.TrimSpace(r.Stdout) != "deployment/web (server dry run)" {
		t.Fatalf("-o name: %q", r.Stdout)
	}

	// Reads everything switch reads, patches nothing.
	cluster.CreateServiceAccount(t, ns, "limited")
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets", "pods", "replicationcontrollers", "serviceaccounts"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs", "jobs"}, Verbs: []string{"get", "list"}},
	}}
	if _, err := cluster.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "read"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "limited", Namespace: ns}}}
	if _, err := cluster.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	as := "system:serviceaccount:" + ns + ":limited"
	run(t, "--as", as, "switch", "-n", ns).MustCode(t, 0)
	for _, args := range [][]string{{"--yes"}, {"--dry-run=server"}} {
		r = run(t, append([]string{"--as", as, "switch", "-n", ns, "--apply"}, args...)...).MustCode(t, 2)
		if want := "you may not patch deployments.apps in namespace " + ns; !strings.Contains(r.Stderr, want) || strings.Count(r.Stderr, "\n") != 1 {
			t.Fatalf("%v: stderr %q, want one line with %q", args, r.Stderr, want)
		}
		noBackup("a forbidden run")
	}
}
