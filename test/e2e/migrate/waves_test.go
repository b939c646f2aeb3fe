package migrate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// waves reads the waves of a migrate -o json document.
func waves(t *testing.T, stdout string) []guard.Wave {
	t.Helper()
	var l struct {
		Waves []guard.Wave `json:"waves"`
	}
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatalf("output is not one JSON document: %v\n%s", err, stdout)
	}
	return l.Waves
}

// TestWavesStopAtAPresentedToken: migrate --apply in waves of one, on the
// real apiserver, no guard installed. A plain client (the plugin is not
// running) presents the first wave's token during its watch: kube-apiserver
// refuses it and writes last-used, the run stops with exit 1 naming that
// Secret, and the two others are untouched. The same command into the same
// folder then goes on with the next waves (the first Secret, done, does not
// count in a wave), quiet to the end; the restore the report offers lets
// the client in again.
func TestWavesStopAtAPresentedToken(t *testing.T) {
	ns := cluster.CreateNamespace(t, "waves")
	var secs []*corev1.Secret
	for _, name := range []string{"w1", "w2", "w3"} {
		secs = append(secs, oldSecret(t, ns, "batch", name, true, 3*365))
		cluster.SetLastUsed(t, ns, name, framework.DaysAgo(200))
	}
	dir := backupDir(t)
	args := []string{"migrate", "-n", ns, "--apply", "--yes", "--backup-dir", dir, "-o", "json", "--wave-size", "1", "--wave-watch", "10s"}

	// The client: as soon as w1 is invalid, it presents the token once.
	presented := make(chan bool, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			cur, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "w1", metav1.GetOptions{})
			if err == nil && cur.Labels[legacy.LabelInvalidSince] != "" {
				_, err := cluster.TokenClient(t, secs[0], "yearly-report/1.0").AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
				presented <- err != nil && strings.Contains(err.Error(), "Unauthorized")
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		presented <- false
	}()
	start := time.Now()
	r := run(t, args...).MustCode(t, 1)
	if !<-presented {
		t.Fatal("the client was not refused: the test proves nothing")
	}
	if d := time.Since(start); d > 9*time.Second {
		t.Errorf("the run took %s: it should stop at the presentation, not at the end of the watch", d)
	}
	day := waitLastUsed(t, secs[0], framework.DaysAgo(200).Format("2006-01-02")).Labels[legacy.LabelLastUsed]
	for _, want := range []string{"only this run watches", ns + "/w1 (presented on " + day, "audit log", "restore --from", "--only " + ns + "/w1", "next wave"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	ws := waves(t, r.Stdout)
	if len(ws) != 1 || ws[0].Result != guard.WavePresented || len(ws[0].Presented) != 1 || ws[0].Presented[0].Name != "w1" {
		t.Fatalf("waves %+v", ws)
	}
	got := framework.SecretOutcomes(t, r.Stdout)
	if got[ns+"/w1"].Result != legacy.OutInvalidated || got[ns+"/w2"].Result != legacy.OutNextWave || got[ns+"/w3"].Result != legacy.OutNextWave {
		t.Errorf("outcomes %+v", got)
	}
	unchanged(t, secs[1])
	unchanged(t, secs[2])

	// Resumed: the next waves, each watched, quiet.
	r = run(t, args...).MustCode(t, 0)
	ws = waves(t, r.Stdout)
	if len(ws) != 2 || ws[0].Result != guard.WaveQuiet || ws[1].Result != guard.WaveQuiet ||
		strings.Join(ws[0].Secrets, ",") != ns+"/w2" || strings.Join(ws[1].Secrets, ",") != ns+"/w3" {
		t.Fatalf("resumed waves %+v\n%s", ws, r.Stderr)
	}
	got = framework.SecretOutcomes(t, r.Stdout)
	if got[ns+"/w1"].Result != legacy.OutAlreadyDone || got[ns+"/w2"].Result != legacy.OutInvalidated || got[ns+"/w3"].Result != legacy.OutInvalidated {
		t.Errorf("resumed outcomes %+v", got)
	}

	// The restore the report offers: that one Secret, its client let in.
	run(t, "restore", "--from", dir, "--only", ns+"/w1").MustCode(t, 0)
	waitAuth(t, secs[0], true)
	for _, s := range secs[1:] {
		if cur, _ := getSecret(t, ns, s.Name); cur.Labels[legacy.LabelInvalidSince] == "" {
			t.Errorf("%s restored too", s.Name)
		}
	}
}

// TestWavesStopAtAnUnknownRejectedClient: kube-apiserver's
// serviceaccount_invalid_legacy_auto_token_uses_total rises during a
// wave's watch while no Secret of the run shows a use (a client presents
// a token invalidated long before the run): the run stops, exit 1, and
// says it cannot tell which Secret.
func TestWavesStopAtAnUnknownRejectedClient(t *testing.T) {
	ns := cluster.CreateNamespace(t, "wavesunknown")
	for _, name := range []string{"u1", "u2"} {
		oldSecret(t, ns, "batch", name, true, 3*365)
		cluster.SetLastUsed(t, ns, name, framework.DaysAgo(200))
	}
	// Someone else's invalidation, in another namespace, outside the
	// run's selection: its client is refused and counted, and nothing on
	// the run's Secrets changes.
	other := cluster.CreateNamespace(t, "wavesother")
	old := oldSecret(t, other, "legacy", "stale", true, 3*365)
	if _, err := cluster.Client.CoreV1().Secrets(other).Patch(ctx, "stale", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"`+legacy.LabelInvalidSince+`":"`+framework.DaysAgo(100).Format("2006-01-02")+`"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAuth(t, old, false)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			cur, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "u1", metav1.GetOptions{})
			if err == nil && cur.Labels[legacy.LabelInvalidSince] != "" {
				_, _ = cluster.TokenClient(t, old, "unknown/1.0").AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", backupDir(t), "-o", "json", "--wave-size", "1", "--wave-watch", "5s").MustCode(t, 1)
	if !strings.Contains(r.Stderr, "cannot be told") || !strings.Contains(r.Stderr, guard.InvalidUsesMetric) {
		t.Errorf("stderr:\n%s", r.Stderr)
	}
	if ws := waves(t, r.Stdout); len(ws) != 1 || ws[0].Result != guard.WaveUnknownClient {
		t.Errorf("waves %+v", ws)
	}
	if cur, _ := getSecret(t, ns, "u2"); cur.Labels[legacy.LabelInvalidSince] != "" {
		t.Error("u2 invalidated: the run went on")
	}
}

// TestDeleteSkipsGuardedSecret: --mode delete leaves a Secret whose guard
// day has not passed (by the apiserver's day), though its verdict is
// delete; one whose guard day passed is deleted.
func TestDeleteSkipsGuardedSecret(t *testing.T) {
	ns := cluster.CreateNamespace(t, "delguarded")
	mark := func(name string, guardUntil time.Time) {
		oldSecret(t, ns, "batch", name, true, 3*365)
		inv := framework.DaysAgo(10).Format("2006-01-02")
		patch := `{"metadata":{"labels":{"` + legacy.LabelInvalidSince + `":"` + inv + `","` + legacy.LabelGuardUntil + `":"` + guardUntil.Format("2006-01-02") + `"},` +
			`"annotations":{"` + legacy.AnnotationInvalidatedOn + `":"` + inv + `","` + legacy.AnnotationInvalidatedFor + `":"` + legacy.InvalidatedForCleanUp + `","` +
			legacy.AnnotationLastUsedBefore + `":"` + legacy.LastUsedNone + `"}}}`
		if _, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mark("guarded", framework.DaysAgo(-5))
	mark("guard-past", framework.DaysAgo(2))
	r := run(t, "migrate", "-n", ns, "--apply", "--mode", "delete", "--unused-for", "1d", "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	got := framework.SecretOutcomes(t, r.Stdout)
	if o := got[ns+"/guarded"]; o.Result != legacy.OutSkipGuarded || !strings.Contains(o.Message, "still guarded until "+framework.DaysAgo(-5).Format("2006-01-02")) {
		t.Errorf("guarded: %+v", o)
	}
	if o := got[ns+"/guard-past"]; o.Result != legacy.OutDeleted {
		t.Errorf("guard day past: %+v", o)
	}
	if _, ok := getSecret(t, ns, "guarded"); !ok {
		t.Error("the guarded Secret was deleted")
	}
}
