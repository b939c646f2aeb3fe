package guard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestInstall: the objects print without a cluster, the apiserver accepts
// them (their CEL compiled), install proves the policy acts, a second
// install changes nothing, and status proves it again.
func TestInstall(t *testing.T) {
	// No cluster at all: the kubeconfig points nowhere.
	r := runAs(t, filepath.Join(t.TempDir(), "none"), "guard", "install", "--dry-run=client", "-o", "yaml").MustCode(t, 0)
	for _, want := range []string{"apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicy\n", "\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicyBinding\n",
		"failurePolicy: Ignore", "reinvocationPolicy: Never", "jsonpatch.escapeKey("} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("--dry-run=client -o yaml lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = runAs(t, filepath.Join(t.TempDir(), "none"), "guard", "install", "--dry-run=client", "-o", "yaml", "--policy-api-version", "v1beta1").MustCode(t, 0)
	if !strings.HasPrefix(r.Stdout, "apiVersion: admissionregistration.k8s.io/v1beta1\n") {
		t.Errorf("--policy-api-version v1beta1:\n%s", r.Stdout)
	}

	// The apiserver validates both objects and compiles every CEL
	// expression (a type error is refused), storing nothing.
	r = run(t, "guard", "install", "--dry-run=server").MustCode(t, 0)
	if !strings.Contains(r.Stdout, "created (server dry run)") {
		t.Errorf("--dry-run=server:\n%s%s", r.Stdout, r.Stderr)
	}
	r = run(t, "guard", "install", "--dry-run=server", "--policy-api-version", wantVersion()).MustCode(t, 0)

	installed(t)
	if !strings.Contains(installRes.Stdout, "mutatingadmissionpolicy.admissionregistration.k8s.io/bound-token-guard created") {
		t.Errorf("first install:\n%s", installRes.Stdout)
	}
	r = run(t, "guard", "install", "--yes").MustCode(t, 0)
	if !strings.Contains(r.Stdout, "bound-token-guard unchanged") || !strings.Contains(r.Stderr, "the guard acts:") {
		t.Errorf("second install:\n%s%s", r.Stdout, r.Stderr)
	}

	// Without --yes and without a terminal nothing is asked and nothing
	// changes (here: nothing would).
	r = run(t, "guard", "status").MustCode(t, 0)
	if !strings.Contains(r.Stdout, "acting:    yes, proved") {
		t.Errorf("status:\n%s", r.Stdout)
	}
	st := status(t, cluster.Kubeconfig, 0)
	if st.ServedVersion != wantVersion() || !st.Installed || !st.Current || st.Proof == nil || st.Proof.State != guard.Acting {
		t.Errorf("status -o json: %+v proof %+v", st, st.Proof)
	}

	// What the cluster holds says why Ignore, on the object itself.
	pol, err := cluster.Client.AdmissionregistrationV1().MutatingAdmissionPolicies().Get(ctx, guard.PolicyName, metav1.GetOptions{})
	if cluster.AtLeast(36) {
		if err != nil {
			t.Fatal(err)
		}
		if fp := pol.Spec.FailurePolicy; fp == nil || *fp != "Ignore" || !strings.Contains(pol.Annotations[guard.AnnotationFailurePolicy], "never block kube-apiserver's own last-used write") {
			t.Errorf("failurePolicy %v, annotation %q", fp, pol.Annotations[guard.AnnotationFailurePolicy])
		}
	}
}

// status runs guard status -o json and checks its exit code.
func status(t *testing.T, kubeconfig string, code int) guard.StatusResult {
	t.Helper()
	r := runAs(t, kubeconfig, "guard", "status", "-o", "json").MustCode(t, code)
	var st guard.StatusResult
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.Stdout)
	}
	return st
}

// restoredAtFirstUse presents the token of a Secret the guard must
// restore: the first request is refused, one within 15 s after is
// accepted, and the Secret says what happened. It returns the Secret and
// how long after the refusal it was restored and the token accepted.
func restoredAtFirstUse(t *testing.T, s *corev1.Secret) (*corev1.Secret, time.Duration, time.Duration) {
	t.Helper()
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Fatalf("the invalidated token of %s/%s: HTTP %d, want 401", s.Namespace, s.Name, c)
	}
	refused := time.Now()
	var cur *corev1.Secret
	var restoredAfter, acceptedAfter time.Duration
	cluster.Eventually(t, 15*time.Second, func() (bool, error) {
		cur = cluster.GetSecret(t, s.Namespace, s.Name)
		_, invalid := cur.Labels[legacy.LabelInvalidSince]
		restoredAfter = time.Since(refused)
		return !invalid, fmt.Errorf("labels %v", cur.Labels)
	})
	cluster.Eventually(t, 15*time.Second, func() (bool, error) {
		c := cluster.PresentToken(t, s, agent)
		acceptedAfter = time.Since(refused)
		return c == http.StatusCreated, fmt.Errorf("HTTP %d", c)
	})
	today := framework.Day(0)
	if cur.Labels[legacy.LabelLastUsed] != today || cur.Annotations[legacy.AnnotationRestoredOnUse] != today ||
		cur.Annotations[legacy.AnnotationRestoredBy] != legacy.RestoredByPolicy {
		t.Errorf("restored without its record: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
	if cur.Labels[legacy.LabelGuardUntil] == "" || cur.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForCleanUp {
		t.Errorf("the restore dropped the invalidation's record: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
	t.Logf("%s/%s: refused, then restored %s and accepted %s after the refusal", s.Namespace, s.Name, restoredAfter.Round(time.Millisecond), acceptedAfter.Round(time.Millisecond))
	return cur, restoredAfter, acceptedAfter
}

// staysInvalid presents the token of a Secret the guard must leave alone:
// refused, kube-apiserver writes last-used (so the policy saw its write),
// the Secret stays invalid and unmarked, and the token is refused again.
func staysInvalid(t *testing.T, s *corev1.Secret) {
	t.Helper()
	before := cluster.GetSecret(t, s.Namespace, s.Name).Annotations[legacy.AnnotationRestoredOnUse]
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Fatalf("the invalidated token of %s/%s: HTTP %d, want 401", s.Namespace, s.Name, c)
	}
	var cur *corev1.Secret
	cluster.Eventually(t, 10*time.Second, func() (bool, error) {
		cur = cluster.GetSecret(t, s.Namespace, s.Name)
		return cur.Labels[legacy.LabelLastUsed] == framework.Day(0), fmt.Errorf("last-used %q: kube-apiserver did not write it, so this case proves nothing", cur.Labels[legacy.LabelLastUsed])
	})
	if _, invalid := cur.Labels[legacy.LabelInvalidSince]; !invalid || cur.Annotations[legacy.AnnotationRestoredOnUse] != before {
		t.Fatalf("restored: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
	time.Sleep(1500 * time.Millisecond)
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Fatalf("presented again: HTTP %d, want 401", c)
	}
}

// TestRestoredAtFirstUse is the guard's promise, with the plugin not
// running: a Secret invalidated for clean-up, its token presented by a
// plain client, is refused once and accepted right after.
func TestRestoredAtFirstUse(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "heal")
	s := legacyToken(t, ns, "yearly-token")
	cluster.MarkGuarded(t, s, framework.CleanUpMarks())
	restoredAtFirstUse(t, s)

	// The same day, the record written once: a cleared label that
	// kube-apiserver writes again is a use too.
	s = legacyToken(t, ns, "busy-token")
	m := framework.CleanUpMarks()
	m.Annotations[legacy.AnnotationLastUsedBefore] = framework.Day(0)
	m.Annotations[legacy.AnnotationLastUsedCleared] = "true"
	cluster.MarkGuarded(t, s, m)
	restoredAtFirstUse(t, s)

	st := status(t, cluster.Kubeconfig, 0)
	if st.Counts == nil || st.Counts.Restored < 2 || st.Counts.RestoredBy[legacy.RestoredByPolicy] < 2 {
		t.Errorf("status counts %+v, want at least the two restores", st.Counts)
	}
}

// TestMigrateApplyThenRestored goes through migrate --apply, which writes
// the marks the guard reads: a Secret last used 200 days ago is
// invalidated, its yearly client presents it, and the audit then says
// restored-on-use.
func TestMigrateApplyThenRestored(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "migrate")
	s := cluster.CreateLegacySecret(t, ns, "report", "yearly-token", false)
	cluster.BackdateSecret(t, ns, "yearly-token", framework.DaysAgo(3*365))
	cluster.SetLastUsed(t, ns, "yearly-token", framework.DaysAgo(200))
	applied := run(t, "migrate", "-n", ns, "yearly-token", "--apply", "--yes", "--backup-dir", filepath.Join(t.TempDir(), "backup")).MustCode(t, 0)
	if strings.Contains(applied.Stderr, "unguarded") {
		t.Errorf("migrate --apply with the guard installed called the invalidation unguarded:\n%s", applied.Stderr)
	}
	inv := cluster.GetSecret(t, ns, "yearly-token")
	if inv.Labels[legacy.LabelInvalidSince] == "" || inv.Labels[legacy.LabelGuardUntil] == "" || inv.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForCleanUp {
		t.Fatalf("migrate --apply did not invalidate for clean-up with a guard day: labels %v annotations %v", inv.Labels, inv.Annotations)
	}
	time.Sleep(time.Second) // the authenticator's Secret informer catches up
	restoredAtFirstUse(t, s)

	r := run(t, "migrate", "-n", ns, "-o", "json").MustCode(t, 0)
	var rep legacy.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 1 || rep.Items[0].Verdict != legacy.VerdictRestoredOnUse {
		t.Fatalf("audit after the restore: %s", r.Stdout)
	}
}

// TestStaysInvalid: the Secrets a guard must never restore, each presented
// by its client. Each case names the rule that keeps it invalid
// (TestEveryRuleIsNeeded removes each rule in turn).
func TestStaysInvalid(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "invalid")
	for i, tc := range []struct {
		name, rule string
		edit       func(m *framework.Marks)
	}{
		{"past its guard day", "within-guard-day", func(m *framework.Marks) { m.Labels[legacy.LabelGuardUntil] = framework.Day(-1) }},
		{"a guard day that is no date", "guard-day", func(m *framework.Marks) { m.Labels[legacy.LabelGuardUntil] = "forever" }},
		{"invalidated as a revocation (no guard day)", "objectSelector", func(m *framework.Marks) {
			m.Annotations[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation
			delete(m.Labels, legacy.LabelGuardUntil)
		}},
		{"a revocation that kept a guard day", "invalidated-for-clean-up", func(m *framework.Marks) {
			m.Annotations[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation
		}},
		{"labelled invalid by hand", "objectSelector", func(m *framework.Marks) {
			*m = framework.Marks{Labels: map[string]any{legacy.LabelInvalidSince: framework.Day(0)}, Annotations: map[string]any{}}
		}},
		{"labelled invalid by hand with a guard day", "invalidated-for-clean-up", func(m *framework.Marks) {
			*m = framework.Marks{Labels: map[string]any{legacy.LabelInvalidSince: framework.Day(0), legacy.LabelGuardUntil: framework.Day(30)}, Annotations: map[string]any{}}
		}},
		{"restored once, invalid again without fresh marks", "not-restored-before", func(m *framework.Marks) {
			m.Annotations[legacy.AnnotationRestoredOnUse] = framework.Day(-3)
			m.Annotations[legacy.AnnotationRestoredBy] = legacy.RestoredByPolicy
		}},
		{"no record of the last-used label", "last-used-recorded", func(m *framework.Marks) { delete(m.Annotations, legacy.AnnotationLastUsedBefore) }},
		{"recorded last-used is the day written, not cleared", "presented-since-invalidation", func(m *framework.Marks) {
			m.Annotations[legacy.AnnotationLastUsedBefore] = framework.Day(0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := legacyToken(t, ns, fmt.Sprintf("token-%d", i))
			m := framework.CleanUpMarks()
			tc.edit(&m)
			cluster.MarkGuarded(t, s, m)
			staysInvalid(t, s)
		})
	}
}

// TestCleanersInvalidationStaysInvalid: kube-controller-manager's own
// cleaner invalidates an old, unused, listed Secret; its client presents
// it; it stays invalid.
func TestCleanersInvalidationStaysInvalid(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "cleaner")
	s := cluster.CleanerInvalidatesOld(t, ns, "old-token")
	time.Sleep(time.Second)
	staysInvalid(t, s)
}

// TestInvalidSinceEmpty: an empty invalid-since label does not invalidate
// (kube-apiserver tests `!= ""`, legacy.go Validate); the token works and
// no restore is recorded on a Secret that was never refused.
func TestInvalidSinceEmpty(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "empty")
	s := legacyToken(t, ns, "token")
	m := framework.CleanUpMarks()
	m.Labels[legacy.LabelInvalidSince] = ""
	cluster.MarkGuarded(t, s, m)
	if c := cluster.PresentToken(t, s, agent); c != http.StatusCreated {
		t.Fatalf("HTTP %d, want 201: an empty invalid-since label does not invalidate", c)
	}
	var cur *corev1.Secret
	cluster.Eventually(t, 10*time.Second, func() (bool, error) {
		cur = cluster.GetSecret(t, ns, "token")
		return cur.Labels[legacy.LabelLastUsed] == framework.Day(0), fmt.Errorf("last-used %q", cur.Labels[legacy.LabelLastUsed])
	})
	if _, ok := cur.Annotations[legacy.AnnotationRestoredOnUse]; ok {
		t.Fatalf("a restore recorded on a valid Secret: %v", cur.Annotations)
	}
}

// TestOtherWritesDoNotRestore: only kube-apiserver's own last-used write
// restores. This tool's invalidation patch, an administrator's edits of the
// labels, and a write by kube-apiserver's identity that leaves last-used
// alone change nothing.
func TestOtherWritesDoNotRestore(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "writes")
	stillInvalid := func(t *testing.T, s *corev1.Secret) {
		t.Helper()
		cur := cluster.GetSecret(t, s.Namespace, s.Name)
		if _, invalid := cur.Labels[legacy.LabelInvalidSince]; !invalid || cur.Annotations[legacy.AnnotationRestoredOnUse] != "" {
			t.Fatalf("restored: labels %v annotations %v", cur.Labels, cur.Annotations)
		}
	}
	adminPatch := func(t *testing.T, s *corev1.Secret, p string) {
		t.Helper()
		if _, err := cluster.Client.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, []byte(p), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lastUsedPatch := func(v string) string {
		return `{"metadata":{"labels":{"` + legacy.LabelLastUsed + `":"` + v + `"}}}`
	}

	t.Run("our invalidation of a Secret used before", func(t *testing.T) {
		s := legacyToken(t, ns, "used-before")
		adminPatch(t, s, lastUsedPatch(framework.Day(-10)))
		m := framework.CleanUpMarks()
		m.Annotations[legacy.AnnotationLastUsedBefore] = framework.Day(-10)
		cluster.MarkGuarded(t, s, m)
		stillInvalid(t, s)
	})
	t.Run("our invalidation clearing today's last-used", func(t *testing.T) {
		s := legacyToken(t, ns, "used-today")
		adminPatch(t, s, lastUsedPatch(framework.Day(0)))
		m := framework.CleanUpMarks()
		m.Labels[legacy.LabelLastUsed] = nil
		m.Annotations[legacy.AnnotationLastUsedBefore] = framework.Day(0)
		m.Annotations[legacy.AnnotationLastUsedCleared] = "true"
		cluster.MarkGuarded(t, s, m)
		stillInvalid(t, s)
	})
	t.Run("an administrator writes last-used", func(t *testing.T) {
		s := legacyToken(t, ns, "admin-last-used")
		cluster.MarkGuarded(t, s, framework.CleanUpMarks())
		adminPatch(t, s, lastUsedPatch(framework.Day(-1)))
		stillInvalid(t, s)
		adminPatch(t, s, lastUsedPatch(framework.Day(0)))
		stillInvalid(t, s)
	})
	t.Run("an administrator edits the guard's labels", func(t *testing.T) {
		s := legacyToken(t, ns, "admin-labels")
		cluster.MarkGuarded(t, s, framework.CleanUpMarks())
		adminPatch(t, s, `{"metadata":{"labels":{"`+legacy.LabelGuardUntil+`":"`+framework.Day(10)+`","example.com/team":"payments"}}}`)
		stillInvalid(t, s)
	})
	t.Run("kube-apiserver's identity, last-used unchanged", func(t *testing.T) {
		s := legacyToken(t, ns, "apiserver-other")
		cluster.MarkGuarded(t, s, framework.CleanUpMarks())
		adminPatch(t, s, lastUsedPatch(framework.Day(-2)))
		as, err := guard.AsAPIServer(cluster.RESTConfig)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := as.CoreV1().Secrets(ns).Patch(ctx, s.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"example.com/team":"payments"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		stillInvalid(t, s)
	})
}
