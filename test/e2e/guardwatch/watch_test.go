package guardwatch

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// Each test has its own namespace and its own `guard watch -n NS --for
// 60s`, so they run side by side. Each presentation uses a fresh Secret
// (or one whose last-used label is older than today): kube-apiserver
// writes last-used at most once a day, so a second presentation the same
// day writes nothing for a guard to see.

// TestRestoredAtFirstUse is the guard's promise with the watch running:
// a Secret invalidated for clean-up (marked as migrate --apply marks it),
// its token presented by a plain client, is refused once and accepted
// right after; the Secret says what happened, an Event says what to do,
// stdout names it. The watch ran across server-closed watches.
func TestRestoredAtFirstUse(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "heal")
	s := legacyToken(t, ns, "token")
	cluster.MarkGuarded(t, s, framework.CleanUpMarks())
	w := startWatch(t, ns)
	// Long enough for the server to have closed the first watches (2 to
	// 4 s each): the restore comes from a resumed one.
	time.Sleep(10 * time.Second)
	healed(t, s)
	wantEvent(t, s)
	r := w.wait(t)
	wantRestoreLines(t, r, s)
	if r.Stderr != "" {
		t.Errorf("stderr not on a terminal: %q", r.Stderr)
	}
	// Rule: resume a watch the server closed. Without it the watch would
	// have ended (or spun) after its first 2 to 4 s.
	if n := watchRequests(t, ns, w.started, time.Now()); n < 3 {
		t.Errorf("%d watch requests in %s with the apiserver closing them every 2-4 s: not resumed", n, watchFor)
	}
}

// TestSameDayAfterAnEarlierUse: a Secret last used 30 days ago, invalidated
// today, is left alone by the watch while nobody presents it (our own
// invalidation recorded that last-used value), and restored once its
// client presents it today.
func TestSameDayAfterAnEarlierUse(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "used")
	s := legacyToken(t, ns, "token")
	cluster.SetLastUsed(t, ns, "token", framework.DaysAgo(30))
	m := framework.CleanUpMarks()
	m.Annotations[legacy.AnnotationLastUsedBefore] = framework.DaysAgo(30).Format(time.DateOnly)
	w := startWatch(t, ns)
	time.Sleep(3 * time.Second)
	cluster.MarkGuarded(t, s, m)
	// Rule: last-used unchanged since the invalidation is no use.
	stillInvalid(t, s)
	healed(t, s)
	w.running(t)
	wantRestoreLines(t, w.wait(t), s)
}

// TestClearedLabelWrittenAgain: migrate clears a last-used label that
// already says today (kube-apiserver would not write it again, legacy.go
// patchSecretWithLastUsedDate) and records it; the refused use writes
// today again, the very value recorded, and the watch restores it.
func TestClearedLabelWrittenAgain(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "cleared")
	s := legacyToken(t, ns, "token")
	m := framework.CleanUpMarks()
	m.Labels[legacy.LabelLastUsed] = nil
	m.Annotations[legacy.AnnotationLastUsedBefore] = framework.Day(0)
	m.Annotations[legacy.AnnotationLastUsedCleared] = "true"
	cluster.MarkGuarded(t, s, m)
	w := startWatch(t, ns)
	// Rule: with last-used-cleared, the label's presence is the use.
	healed(t, s)
	wantRestoreLines(t, w.wait(t), s)
}

// TestPresentedWhileNotWatching: a Secret presented while no watch runs is
// restored when the watch starts: it judges what it lists, not only what
// changes while it watches.
func TestPresentedWhileNotWatching(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "offline")
	s := legacyToken(t, ns, "token")
	cluster.MarkGuarded(t, s, framework.CleanUpMarks())
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Fatalf("HTTP %d, want 401", c)
	}
	cluster.Eventually(t, 10*time.Second, func() (bool, error) {
		return cluster.GetSecret(t, ns, "token").Labels[legacy.LabelLastUsed] == framework.Day(0), nil
	})
	time.Sleep(2 * time.Second)
	if cur := cluster.GetSecret(t, ns, "token"); restoredMarks(cur) {
		t.Fatalf("restored with no watch running: %v", cur.Annotations)
	}
	w := startWatch(t, ns)
	cluster.Eventually(t, 15*time.Second, func() (bool, error) { return restoredMarks(cluster.GetSecret(t, ns, "token")), nil })
	t.Logf("restored %s after the watch started", time.Since(w.started).Round(time.Millisecond))
	cluster.Eventually(t, 15*time.Second, func() (bool, error) { return cluster.PresentToken(t, s, agent) == http.StatusCreated, nil })
	wantEvent(t, s)
	wantRestoreLines(t, w.wait(t), s)
}

// TestStaysInvalid: what the watch must never restore, presented while it
// runs, next to a Secret it does restore (so it was watching).
func TestStaysInvalid(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "stay")
	control := legacyToken(t, ns, "control")
	cluster.MarkGuarded(t, control, framework.CleanUpMarks())

	// Past its guard day: kube-apiserver writes today, after it.
	late := legacyToken(t, ns, "late")
	m := framework.CleanUpMarks()
	m.Labels[legacy.LabelGuardUntil] = framework.Day(-1)
	m.Annotations[legacy.AnnotationInvalidatedOn] = framework.Day(-91)
	cluster.MarkGuarded(t, late, m)

	// A revocation as migrate --apply --revoke writes it (no guard day),
	// and one still carrying a guard day (the purpose decides).
	revoked := legacyToken(t, ns, "revoked")
	m = framework.CleanUpMarks()
	m.Labels[legacy.LabelGuardUntil] = nil
	m.Annotations[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation
	cluster.MarkGuarded(t, revoked, m)
	revokedGuarded := legacyToken(t, ns, "revoked-guarded")
	m = framework.CleanUpMarks()
	m.Annotations[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation
	cluster.MarkGuarded(t, revokedGuarded, m)

	// Labelled by hand: the invalid-since label alone, and one copied
	// with a guard day but none of our record.
	byHand := legacyToken(t, ns, "by-hand")
	cluster.MarkGuarded(t, byHand, framework.Marks{Labels: map[string]any{legacy.LabelInvalidSince: framework.Day(0)}})
	copied := legacyToken(t, ns, "copied-labels")
	cluster.MarkGuarded(t, copied, framework.Marks{Labels: map[string]any{legacy.LabelInvalidSince: framework.Day(0), legacy.LabelGuardUntil: framework.Day(30)}})

	w := startWatch(t, ns)
	time.Sleep(3 * time.Second)

	// A person puts invalid-since back on a Secret the watch restored:
	// the marks left by the restore are a record, not a guard. Its
	// presentation waits for the end: the token's accepted request is
	// cached by kube-apiserver for 10 s (cached_token_authenticator.go).
	healed(t, control)
	cluster.MarkGuarded(t, control, framework.Marks{Labels: map[string]any{legacy.LabelInvalidSince: framework.Day(0)}})
	stillInvalid(t, control)

	staysInvalid(t, late)
	staysInvalid(t, revoked)
	staysInvalid(t, revokedGuarded)
	staysInvalid(t, byHand)
	staysInvalid(t, copied)

	stillInvalid(t, control)
	if c := cluster.PresentToken(t, control, agent); c != http.StatusUnauthorized {
		t.Errorf("the control, invalid again by hand: HTTP %d, want 401", c)
	}
	w.running(t)
	wantRestoreLines(t, w.wait(t), control)
	for _, s := range []string{"late", "revoked", "revoked-guarded", "by-hand", "copied-labels"} {
		l, err := cluster.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + s})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 0 {
			t.Errorf("events on %s: %+v", s, l.Items)
		}
	}
}

// TestCleanersInvalidationStaysInvalid: kube-controller-manager's own
// cleaner invalidates an old, unused, listed Secret (the label alone); its
// client presents it while the watch runs; it stays invalid.
func TestCleanersInvalidationStaysInvalid(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "cleaner")
	s := cluster.CleanerInvalidatesOld(t, ns, "old-token")
	w := startWatch(t, ns)
	time.Sleep(3 * time.Second)
	staysInvalid(t, s)
	w.running(t)
	wantRestoreLines(t, w.wait(t))
}

// TestInvalidatedByMigrate: the whole path, through migrate --apply --yes
// itself rather than a hand-written patch.
func TestInvalidatedByMigrate(t *testing.T) {
	t.Parallel()
	ns := cluster.CreateNamespace(t, "migrate")
	s := legacyToken(t, ns, "yearly-token")
	cluster.BackdateSecret(t, ns, "yearly-token", framework.DaysAgo(3*365))
	dir := filepath.Join(t.TempDir(), "backup")
	r := run(t, "migrate", "-n", ns, "yearly-token", "--apply", "--yes", "--backup-dir", dir).MustCode(t, 0)
	cur := cluster.GetSecret(t, ns, "yearly-token")
	if cur.Labels[legacy.LabelInvalidSince] == "" || cur.Labels[legacy.LabelGuardUntil] == "" ||
		cur.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForCleanUp {
		t.Fatalf("migrate --apply did not invalidate with its record: %v %v\n%s%s", cur.Labels, cur.Annotations, r.Stdout, r.Stderr)
	}
	w := startWatch(t, ns)
	time.Sleep(2 * time.Second) // kube-apiserver's informer sees the label
	healed(t, s)
	wantEvent(t, s)
	wantRestoreLines(t, w.wait(t), s)
}

// watchRequests counts the watches of guarded Secrets in ns this test
// binary opened between start and end (client-go's default user agent
// starts with the program's name).
func watchRequests(t *testing.T, ns string, start, end time.Time) int {
	t.Helper()
	n := 0
	for _, r := range cluster.OwnRequests(t, start, end) {
		if r.Verb == "watch" && r.Resource == "secrets" && r.Namespace == ns && strings.Contains(r.RequestURI, "guard-until") {
			n++
		}
	}
	return n
}
