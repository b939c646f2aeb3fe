package migrate

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The marks migrate --apply writes with its invalidation, and what the
// real kube-apiserver does with them when a client presents the token. No
// guard runs in this package's cluster: an invalidated token stays invalid.

// present sends one request with the Secret's token, as a client of its
// own would (the plugin is not running), and returns whether it was
// refused as unauthenticated; any other failure stops the test.
func present(t *testing.T, s *corev1.Secret, agent string) bool {
	t.Helper()
	switch c := cluster.PresentToken(t, s, agent); c {
	case http.StatusUnauthorized:
		return true
	case http.StatusCreated:
		return false
	default:
		t.Fatalf("the token of %s/%s: HTTP %d", s.Namespace, s.Name, c)
		return false
	}
}

// markKeys are every label and annotation of this tool's own.
var markKeys = []string{legacy.LabelGuardUntil, legacy.AnnotationInvalidatedOn, legacy.AnnotationInvalidatedFor,
	legacy.AnnotationLastUsedBefore, legacy.AnnotationLastUsedCleared, legacy.AnnotationRestoredOnUse, legacy.AnnotationRestoredBy}

// waitLastUsed waits until kube-apiserver has written the Secret's
// last-used label (its patch follows the rejected request) and returns it.
func waitLastUsed(t *testing.T, s *corev1.Secret, not string) *corev1.Secret {
	t.Helper()
	var cur *corev1.Secret
	cluster.Eventually(t, 20*time.Second, func() (bool, error) {
		cur, _ = getSecret(t, s.Namespace, s.Name)
		v := cur.Labels[legacy.LabelLastUsed]
		return v != "" && v != not, fmt.Errorf("last-used %q", v)
	})
	return cur
}

// invalidateOne runs migrate --apply on one named Secret into a fresh
// backup folder and returns the folder.
func invalidateOne(t *testing.T, ns, name string, flags ...string) string {
	t.Helper()
	dir := backupDir(t)
	args := append([]string{"migrate", "-n", ns, name, "--apply", "--yes", "--backup-dir", dir, "-o", "json"}, flags...)
	r := run(t, args...).MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/"+name]; o.Result != legacy.OutInvalidated {
		t.Fatalf("%s: outcome %+v\n%s", name, o, r.Stderr)
	}
	return dir
}

// TestSameDayRejectionIsInUseFailing is the first finding: a
// Secret last used 200 days ago is invalidated, and a client presents its
// token that very day. kube-apiserver refuses it and writes last-used =
// today, the invalid-since day: the rule "last-used later than
// invalid-since" cannot see it; the recorded last-used value can.
func TestSameDayRejectionIsInUseFailing(t *testing.T) {
	ns := cluster.CreateNamespace(t, "sameday")
	s := oldSecret(t, ns, "report", "yearly-token", true, 3*365)
	cluster.SetLastUsed(t, ns, "yearly-token", framework.DaysAgo(200))
	wantVerdict(t, audit(t, "migrate", "-n", ns), "yearly-token", legacy.VerdictInvalidate)

	invalidateOne(t, ns, "yearly-token")
	inv, _ := getSecret(t, ns, "yearly-token")
	day := inv.Labels[legacy.LabelInvalidSince]
	if inv.Annotations[legacy.AnnotationInvalidatedOn] != day || inv.Annotations[legacy.AnnotationLastUsedBefore] != framework.DaysAgo(200).Format("2006-01-02") ||
		inv.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForCleanUp || inv.Labels[legacy.LabelGuardUntil] == "" {
		t.Fatalf("invalidated without its record: labels %v annotations %v", inv.Labels, inv.Annotations)
	}
	// Unused, it waits for deletion.
	wantVerdict(t, audit(t, "migrate", "-n", ns), "yearly-token", legacy.VerdictWait)

	// The yearly job runs: its first request is refused, and
	// kube-apiserver writes the day it refused it.
	time.Sleep(time.Second) // the authenticator's Secret informer catches up
	if !present(t, s, "yearly-report/1.0") {
		t.Fatal("the invalidated token was accepted")
	}
	cur := waitLastUsed(t, s, framework.DaysAgo(200).Format("2006-01-02"))
	if cur.Labels[legacy.LabelLastUsed] != day {
		t.Fatalf("last-used %s, invalid-since %s: not the same day (midnight passed?)", cur.Labels[legacy.LabelLastUsed], day)
	}
	f := audit(t, "migrate", "-n", ns)["yearly-token"]
	if f.Verdict != legacy.VerdictInUseFailing || !strings.Contains(f.Reason, "presented it since") {
		t.Errorf("verdict %s (%s), want in-use-failing though last-used and invalid-since are the same day", f.Verdict, f.Reason)
	}
	if f.Marks == nil || f.Marks.InvalidatedOn != day {
		t.Errorf("the audit does not show the marks: %+v", f.Marks)
	}
}

// TestTodaysLabelIsCleared: a Secret labelled last-used today (kept
// unless --include-used) would be refused silently, as kube-apiserver
// writes last-used only when it says neither today nor tomorrow; the
// invalidation clears it, so the refused use is written and seen.
func TestTodaysLabelIsCleared(t *testing.T) {
	ns := cluster.CreateNamespace(t, "today")
	s := oldSecret(t, ns, "app", "busy-token", true, 3*365)
	// Labelled as kube-apiserver labels a use, without a use: a real one
	// would leave the token in the authenticator's success cache (10 s).
	cluster.SetLastUsed(t, ns, "busy-token", time.Now())
	today := time.Now().UTC().Format("2006-01-02")
	wantVerdict(t, audit(t, "migrate", "-n", ns), "busy-token", legacy.VerdictUsed)

	invalidateOne(t, ns, "busy-token", "--include-used")
	inv, _ := getSecret(t, ns, "busy-token")
	if _, ok := inv.Labels[legacy.LabelLastUsed]; ok || inv.Annotations[legacy.AnnotationLastUsedCleared] != "true" || inv.Annotations[legacy.AnnotationLastUsedBefore] != today {
		t.Fatalf("today's label not cleared with its record: labels %v annotations %v", inv.Labels, inv.Annotations)
	}

	// Why: the same Secret invalidated by the label alone (as the
	// cleaner or a person does) is refused and left as it was.
	control := oldSecret(t, ns, "app", "control-token", true, 3*365)
	cluster.SetLastUsed(t, ns, "control-token", time.Now())
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, legacy.LabelInvalidSince, today)
	labelled, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, "control-token", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(time.Second)
	if !present(t, control, "busy/2.0") {
		t.Fatal("the control token was accepted")
	}
	// kube-apiserver patches last-used inside the request that it
	// refuses (legacy.go, Validate): by its answer, any write is done.
	if c, _ := getSecret(t, ns, "control-token"); c.ResourceVersion != labelled.ResourceVersion {
		t.Errorf("kube-apiserver wrote a Secret labelled last-used today: %v", c.Labels)
	}
	if !present(t, s, "busy/2.0") {
		t.Fatal("the invalidated token was accepted")
	}
	cur := waitLastUsed(t, s, "")
	if cur.Labels[legacy.LabelLastUsed] != cur.Labels[legacy.LabelInvalidSince] {
		t.Errorf("kube-apiserver wrote last-used %s on a Secret invalid since %s", cur.Labels[legacy.LabelLastUsed], cur.Labels[legacy.LabelInvalidSince])
	}
	if f := audit(t, "migrate", "-n", ns)["busy-token"]; f.Verdict != legacy.VerdictInUseFailing {
		t.Errorf("verdict %s (%s), want in-use-failing", f.Verdict, f.Reason)
	}
}

// TestRestoreRemovesTheMarks: restore brings an invalidated Secret back to
// its backup, label and marks gone (the guard day included), apart from
// what kube-apiserver wrote since (last-used); the token works again.
func TestRestoreRemovesTheMarks(t *testing.T) {
	ns := cluster.CreateNamespace(t, "unmark")
	s := oldSecret(t, ns, "app", "app-token", true, 3*365)
	before, _ := getSecret(t, ns, "app-token")
	dir := invalidateOne(t, ns, "app-token")
	if inv, _ := getSecret(t, ns, "app-token"); inv.Labels[legacy.LabelGuardUntil] == "" || inv.Annotations[legacy.AnnotationInvalidatedOn] == "" {
		t.Fatalf("not marked: %v %v", inv.Labels, inv.Annotations)
	}
	time.Sleep(time.Second)
	if !present(t, s, "late-client/1.0") {
		t.Fatal("the invalidated token was accepted")
	}
	waitLastUsed(t, s, "")

	r := run(t, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/app-token"]; o.Result != legacy.OutLabelRemoved {
		t.Fatalf("restore: outcome %+v", o)
	}
	cur, _ := getSecret(t, ns, "app-token")
	for _, k := range append(markKeys, legacy.LabelInvalidSince) {
		if _, ok := cur.Labels[k]; ok {
			t.Errorf("label %s left after restore", k)
		}
		if _, ok := cur.Annotations[k]; ok {
			t.Errorf("annotation %s left after restore", k)
		}
	}
	platform := cur.DeepCopy()
	delete(platform.Labels, legacy.LabelLastUsed) // written by kube-apiserver since
	if len(platform.Labels) == 0 {
		platform.Labels = nil
	}
	if fmt.Sprint(platform.Labels) != fmt.Sprint(before.Labels) || fmt.Sprint(platform.Annotations) != fmt.Sprint(before.Annotations) {
		t.Errorf("restored labels %v annotations %v, backup %v %v", cur.Labels, cur.Annotations, before.Labels, before.Annotations)
	}
	waitAuth(t, s, true)
}

// TestRevokeIsNeverGuarded: --revoke writes no guard day, and takes the
// guard off a Secret invalidated for clean-up earlier (its token leaked
// since); restore does not put the guard back.
func TestRevokeIsNeverGuarded(t *testing.T) {
	ns := cluster.CreateNamespace(t, "revoke")
	leaked := oldSecret(t, ns, "app", "leaked-token", true, 3*365)
	use(t, cluster.TokenClient(t, leaked, "attacker/0.1"), 1) // in use: --include-used
	invalidateOne(t, ns, "leaked-token", "--revoke", "--include-used")
	cur, _ := getSecret(t, ns, "leaked-token")
	if _, ok := cur.Labels[legacy.LabelGuardUntil]; ok || cur.Labels[legacy.LabelInvalidSince] == "" || cur.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForRevocation {
		t.Errorf("revocation: labels %v annotations %v", cur.Labels, cur.Annotations)
	}

	oldSecret(t, ns, "app", "later-leaked", true, 3*365)
	invalidateOne(t, ns, "later-leaked")
	if g, _ := getSecret(t, ns, "later-leaked"); g.Labels[legacy.LabelGuardUntil] == "" {
		t.Fatalf("clean-up wrote no guard day: %v", g.Labels)
	}
	dir := invalidateOne(t, ns, "later-leaked", "--revoke")
	cur, _ = getSecret(t, ns, "later-leaked")
	if _, ok := cur.Labels[legacy.LabelGuardUntil]; ok || cur.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForRevocation {
		t.Errorf("revoking a guarded Secret: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
	run(t, "restore", "--from", dir).MustCode(t, 0)
	if cur, _ = getSecret(t, ns, "later-leaked"); cur.Labels[legacy.LabelGuardUntil] != "" {
		t.Errorf("restore put the guard back: %v", cur.Labels)
	}
}

// TestRestoredOnUseNamesTheClient: a Secret a guard restored (here by
// hand, as the guard's own patch would: invalid-since removed, the day
// and the guard recorded) is audited restored-on-use; with the audit log,
// the reason names the user agent and address of the request accepted
// after the restore. --apply leaves it alone unless told
// --reinvalidate-restored, which starts a new cycle.
func TestRestoredOnUseNamesTheClient(t *testing.T) {
	ns := cluster.CreateNamespace(t, "restored")
	s := oldSecret(t, ns, "report", "yearly-token", true, 3*365)
	invalidateOne(t, ns, "yearly-token")
	today := time.Now().UTC().Format("2006-01-02")
	heal := fmt.Sprintf(`{"metadata":{"labels":{%q:null,%q:%q},"annotations":{%q:%q,%q:%q}}}`,
		legacy.LabelInvalidSince, legacy.LabelLastUsed, today, legacy.AnnotationRestoredOnUse, today, legacy.AnnotationRestoredBy, legacy.RestoredByWatch)
	if _, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, "yearly-token", types.MergePatchType, []byte(heal), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f := audit(t, "migrate", "-n", ns)["yearly-token"]
	if f.Verdict != legacy.VerdictRestoredOnUse || !strings.Contains(f.Reason, "audit log from "+today) {
		t.Errorf("verdict %s (%s), want restored-on-use pointing at the audit log", f.Verdict, f.Reason)
	}

	waitAuth(t, s, true)
	use(t, cluster.TokenClient(t, s, "yearly-report/7.1"), 2)
	cluster.Eventually(t, 20*time.Second, func() (bool, error) {
		f = audit(t, "migrate", "-n", ns, "--audit-log", cluster.AuditLog)["yearly-token"]
		return f.Verdict == legacy.VerdictRestoredOnUse && strings.Contains(f.Reason, "user agent yearly-report/7.1") && strings.Contains(f.Reason, ", from "),
			fmt.Errorf("verdict %s (%s)", f.Verdict, f.Reason)
	})

	r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--include-used", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/yearly-token"]; o.Result != legacy.OutSkipRestored {
		t.Errorf("without --reinvalidate-restored: outcome %+v", o)
	}
	invalidateOne(t, ns, "yearly-token", "--reinvalidate-restored")
	cur, _ := getSecret(t, ns, "yearly-token")
	if _, ok := cur.Annotations[legacy.AnnotationRestoredOnUse]; ok || cur.Labels[legacy.LabelInvalidSince] != today || cur.Annotations[legacy.AnnotationLastUsedBefore] != today {
		t.Errorf("invalidated again: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
}
