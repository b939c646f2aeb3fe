package guard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestStatusUnprovenWithoutImpersonation: a user who may read the policy
// and the Secrets but not impersonate system:apiserver gets "unproven",
// never a guess, and exit 0; the administrator's status proves it.
func TestStatusUnprovenWithoutImpersonation(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "viewer")
	cluster.CreateServiceAccount(t, ns, "viewer")
	rbac := cluster.Client.RbacV1()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "guard-viewer-"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{guard.Group}, Resources: []string{"mutatingadmissionpolicies", "mutatingadmissionpolicybindings"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "delete", "patch"}},
		},
	}
	role, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{}) })
	binding, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "guard-viewer-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "viewer"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}) })
	kc := filepath.Join(t.TempDir(), "viewer.kubeconfig")
	run(t, "create", "viewer", "-n", ns, "--kubeconfig-out", kc).MustCode(t, 0)

	r := runAs(t, kc, "guard", "status").MustCode(t, 0)
	if !strings.Contains(r.Stdout, "acting:    unproven: you may not impersonate users system:apiserver") {
		t.Errorf("status as a viewer:\n%s", r.Stdout)
	}
	st := status(t, kc, 0)
	if !st.Installed || st.Proof == nil || st.Proof.State != guard.Unproven {
		t.Errorf("status -o json as a viewer: %+v", st)
	}
	if st := status(t, cluster.Kubeconfig, 0); st.Proof == nil || st.Proof.State != guard.Acting {
		t.Errorf("status as the administrator: %+v", st.Proof)
	}
}

// TestAdmissionPluginDisabled: a second cluster serves the policy API but
// runs without the MutatingAdmissionPolicy admission plugin. Served is
// not enforced: install writes the objects but does not claim success,
// status says the guard does not act, and a presented token stays
// refused.
func TestAdmissionPluginDisabled(t *testing.T) {
	off, err := framework.Start(framework.Options{
		Name:          fmt.Sprintf("guard-off-%d", os.Getpid()),
		APIServerArgs: append(policyAPIArgs(), "--disable-admission-plugins=MutatingAdmissionPolicy"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = off.Stop() })

	r := runAs(t, off.Kubeconfig, "guard", "install", "--yes", "--timeout", "5s").MustCode(t, 1)
	if !strings.Contains(r.Stderr, "is installed ("+guard.Group+"/"+wantVersion()+") but does not act") || strings.Contains(r.Stderr, "the guard acts") {
		t.Errorf("install on a cluster without the admission plugin:\n%s%s", r.Stdout, r.Stderr)
	}
	r = runAs(t, off.Kubeconfig, "guard", "status").MustCode(t, 1)
	if !strings.Contains(r.Stdout, "acting:    NO: kube-apiserver's own last-used patch") {
		t.Errorf("status on a cluster without the admission plugin:\n%s", r.Stdout)
	}

	// The truth behind it: a presented token stays refused.
	ns := off.CreateNamespace(t, "off")
	s := off.CreateLegacySecret(t, ns, "app", "token", false)
	saved := cluster
	cluster = off
	defer func() { cluster = saved }()
	cluster.MarkGuarded(t, s, framework.CleanUpMarks())
	staysInvalid(t, s)
	if st, msg, fix := doctorGuard(t, off.Kubeconfig); st != "fail" || !strings.Contains(msg, "but NOT acting") || !strings.Contains(fix, "MutatingAdmissionPolicy admission plugin") {
		t.Errorf("doctor guard without the admission plugin: %s %s | %s", st, msg, fix)
	}

	r = runAs(t, off.Kubeconfig, "guard", "uninstall", "--yes").MustCode(t, 0)
	if !strings.Contains(r.Stdout, "mutatingadmissionpolicy.admissionregistration.k8s.io/bound-token-guard deleted") ||
		!strings.Contains(r.Stderr, "no guard now for 1 invalidated legacy token Secret with a guard day") {
		t.Errorf("uninstall:\n%s%s", r.Stdout, r.Stderr)
	}
	r = runAs(t, off.Kubeconfig, "guard", "uninstall", "--yes").MustCode(t, 0)
	if !strings.Contains(r.Stdout, "not installed: nothing to delete") {
		t.Errorf("second uninstall:\n%s", r.Stdout)
	}
	runAs(t, off.Kubeconfig, "guard", "status").MustCode(t, 1)
	if st, msg, fix := doctorGuard(t, off.Kubeconfig); st != "warn" || !strings.Contains(msg, "not installed") || fix != "kubectl bound-token guard install" {
		t.Errorf("doctor guard after uninstall, a Secret still guarded: %s %s | %s", st, msg, fix)
	}
}

// doctorGuard runs doctor -o json and returns its guard check.
func doctorGuard(t *testing.T, kubeconfig string) (status, message, fix string) {
	t.Helper()
	r := runAs(t, kubeconfig, "doctor", "-o", "json")
	if c, ok := r.DoctorChecks(t)["guard"]; ok {
		return c.Status, c.Message, c.Fix
	}
	t.Fatalf("doctor has no guard check:\n%s", r.Stdout)
	return
}

// TestDoctorGuard: doctor's guard check proves the guard acts on a Secret
// this tool invalidated, without creating one.
func TestDoctorGuard(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "doctor")
	cluster.MarkGuarded(t, legacyToken(t, ns, "token"), framework.CleanUpMarks())
	st, msg, fix := doctorGuard(t, cluster.Kubeconfig)
	if st != "pass" || !strings.Contains(msg, "installed ("+guard.Group+"/"+wantVersion()) || !strings.Contains(msg, "and acting: kube-apiserver's own last-used patch") {
		t.Errorf("doctor guard: %s %s | %s", st, msg, fix)
	}
}
