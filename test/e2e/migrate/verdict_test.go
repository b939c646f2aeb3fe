package migrate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The package's clusters track legacy token use since this many days ago
// (TestMain); tests that need another start set it and put it back.
const trackedDays = 400

// trackSince sets the tracking start for one test.
func trackSince(t *testing.T, day time.Time) {
	t.Helper()
	cluster.SetTrackingSince(t, day)
	t.Cleanup(func() { cluster.SetTrackingSince(t, framework.DaysAgo(trackedDays)) })
}

// oldSecret is a legacy token Secret created daysOld days ago.
func oldSecret(t *testing.T, ns, sa, name string, listed bool, daysOld int) *corev1.Secret {
	t.Helper()
	s := legacySecret(t, ns, sa, name, listed)
	cluster.BackdateSecret(t, ns, name, framework.DaysAgo(daysOld))
	return s
}

func audit(t *testing.T, args ...string) map[string]*legacy.Finding {
	t.Helper()
	r := run(t, append(args, "-o", "json")...).MustCode(t, 0)
	var rep legacy.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.Stdout)
	}
	m := map[string]*legacy.Finding{}
	for _, f := range rep.Items {
		m[f.Name] = f
	}
	return m
}

func wantVerdict(t *testing.T, got map[string]*legacy.Finding, name, verdict string) {
	t.Helper()
	f := got[name]
	if f == nil {
		t.Fatalf("%s not in the audit", name)
	}
	if f.Verdict != verdict {
		t.Errorf("%s: verdict %s (%s), want %s", name, f.Verdict, f.Reason, verdict)
	}
}

func unchanged(t *testing.T, s *corev1.Secret) {
	t.Helper()
	cur, ok := getSecret(t, s.Namespace, s.Name)
	if !ok {
		t.Errorf("%s/%s was deleted", s.Namespace, s.Name)
		return
	}
	if cur.Labels[legacy.LabelInvalidSince] != "" {
		t.Errorf("%s/%s was changed: %v", s.Namespace, s.Name, cur.Labels)
	}
}

func use(t *testing.T, cs kubernetes.Interface, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrackingStartDecides: an unlabelled Secret three years old is
// "unknown" while use is tracked for less than the threshold, and
// "invalidate" once it is tracked for longer; apply follows the verdict.
func TestTrackingStartDecides(t *testing.T) {
	ns := cluster.CreateNamespace(t, "tracking")
	s := oldSecret(t, ns, "app", "app-token", true, 3*365)

	trackSince(t, framework.DaysAgo(0))
	wantVerdict(t, audit(t, "migrate", "-n", ns), "app-token", legacy.VerdictUnknown)
	r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/app-token"]; o.Result != legacy.OutSkipUnknown {
		t.Fatalf("tracking began today: outcome %+v", o)
	}
	unchanged(t, s)

	cluster.SetTrackingSince(t, framework.DaysAgo(trackedDays))
	wantVerdict(t, audit(t, "migrate", "-n", ns), "app-token", legacy.VerdictInvalidate)
	r = run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/app-token"]; o.Result != legacy.OutInvalidated {
		t.Fatalf("tracking began %d days ago: outcome %+v", trackedDays, o)
	}
	waitAuth(t, s, false)
}

// TestUseKeepsTokens: a token used 20 days ago, one used a minute ago and
// an invalid one still presented stay under a bare --apply; the used ones
// change only with --include-used.
func TestUseKeepsTokens(t *testing.T) {
	ns := cluster.CreateNamespace(t, "use")
	month := oldSecret(t, ns, "app", "month-token", true, 3*365)
	cluster.SetLastUsed(t, ns, "month-token", framework.DaysAgo(20))
	now := oldSecret(t, ns, "app", "now-token", true, 3*365)
	// A real use: the apiserver labels the Secret with today.
	use(t, cluster.TokenClient(t, now, "outside-job/1.0"), 1)
	cluster.Eventually(t, 20*time.Second, func() (bool, error) {
		cur, _ := getSecret(t, ns, "now-token")
		return cur.Labels[legacy.LabelLastUsed] == time.Now().UTC().Format("2006-01-02"), nil
	})
	oldSecret(t, ns, "app", "failing-token", true, 3*365)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q,%q:%q}}}`, legacy.LabelInvalidSince, framework.DaysAgo(200).Format("2006-01-02"), legacy.LabelLastUsed, framework.DaysAgo(150).Format("2006-01-02"))
	if _, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, "failing-token", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	got := audit(t, "migrate", "-n", ns)
	wantVerdict(t, got, "month-token", legacy.VerdictUsed)
	wantVerdict(t, got, "now-token", legacy.VerdictUsed)
	wantVerdict(t, got, "failing-token", legacy.VerdictInUseFailing)

	for _, mode := range []string{"invalidate", "delete"} {
		r := run(t, "migrate", "-n", ns, "--apply", "--mode", mode, "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
		out := framework.SecretOutcomes(t, r.Stdout)
		if mode == "invalidate" {
			for _, n := range []string{"month-token", "now-token"} {
				if o := out[ns+"/"+n]; o.Result != legacy.OutSkipUsed {
					t.Errorf("%s %s: outcome %+v", mode, n, o)
				}
			}
		} else if o := out[ns+"/failing-token"]; o.Result != legacy.OutSkipUsed {
			t.Errorf("delete of an in-use-failing token: outcome %+v", o)
		}
	}
	unchanged(t, month)
	unchanged(t, now)
	if _, ok := getSecret(t, ns, "failing-token"); !ok {
		t.Fatal("the in-use-failing Secret was deleted")
	}
	waitAuth(t, now, true)

	r := run(t, "migrate", "-n", ns, "now-token", "--apply", "--include-used", "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/now-token"]; o.Result != legacy.OutInvalidated {
		t.Fatalf("--include-used: outcome %+v", o)
	}
	unchanged(t, month) // not named
	waitAuth(t, now, false)
}

// TestReadersKeepTokens: a CronJob between runs, a Deployment at 0
// replicas and a finished pod's imagePullSecrets keep their Secrets; a
// Deployment's old ReplicaSet at 0 replicas is reported but does not.
func TestReadersKeepTokens(t *testing.T) {
	ns := cluster.CreateNamespace(t, "readers")
	cron := oldSecret(t, ns, "app", "cron-token", true, 3*365)
	deploy := oldSecret(t, ns, "app", "deploy-token", true, 3*365)
	pull := oldSecret(t, ns, "app", "pull-token", true, 3*365)
	oldSecret(t, ns, "app", "history-token", true, 3*365)
	container := []corev1.Container{{Name: "c", Image: "example.invalid/app"}}
	volume := func(secret string) corev1.PodSpec {
		return corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: container, Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}}
	}
	labels := map[string]string{"app": "web"}
	if _, err := cluster.Client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(true),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: volume("cron-token")}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	envSpec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/web", Env: []corev1.EnvVar{{Name: "TOKEN",
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "deploy-token"}, Key: "token"}}}}}}}
	d, err := cluster.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: envSpec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Its rollout history: an old ReplicaSet at 0 replicas that read
	// history-token (no deployment controller runs here, so it is made
	// by hand with the owner reference the controller would set).
	histSpec := volume("history-token")
	histSpec.RestartPolicy = corev1.RestartPolicyAlways
	if _, err := cluster.Client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: histSpec}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "done"},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: container, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull-token"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodSucceeded
	if _, err := cluster.Client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	got := audit(t, "migrate", "-n", ns)
	for name, reader := range map[string]string{
		"cron-token":    "cronjob/nightly (volume)",
		"deploy-token":  "deployment/web (env)",
		"pull-token":    "pod/done (imagePullSecrets)",
		"history-token": "replicaset/web-1 (volume, rollout history)",
	} {
		f := got[name]
		if len(f.Readers) != 1 || f.Readers[0].String() != reader {
			t.Errorf("%s: readers %v, want %s", name, f.Readers, reader)
		}
	}
	for _, n := range []string{"cron-token", "deploy-token", "pull-token"} {
		wantVerdict(t, got, n, legacy.VerdictSwitchWorkload)
	}
	wantVerdict(t, got, "history-token", legacy.VerdictInvalidate)
	if p := got["pull-token"].Readers[0]; p.Phase != string(corev1.PodSucceeded) {
		t.Errorf("finished pod's phase %q", p.Phase)
	}
	table := run(t, "migrate", "-n", ns).MustCode(t, 0).Stdout
	if !strings.Contains(table, "cronjob/nightly (volume)") {
		t.Errorf("the table does not name the CronJob:\n%s", table)
	}

	r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	out := framework.SecretOutcomes(t, r.Stdout)
	for _, s := range []*corev1.Secret{cron, deploy, pull} {
		if o := out[ns+"/"+s.Name]; o.Result != legacy.OutSkipRead {
			t.Errorf("%s: outcome %+v", s.Name, o)
		}
		unchanged(t, s)
	}
	if o := out[ns+"/history-token"]; o.Result != legacy.OutInvalidated {
		t.Errorf("history-token: outcome %+v", o)
	}
}

// TestForecastMatchesTheCleaner runs kube-controller-manager's own cleaner
// once on the backdated cluster and compares what it invalidated with what
// the forecast said it would on its next run; a tracking start last week
// stops both.
func TestForecastMatchesTheCleaner(t *testing.T) {
	ns := cluster.CreateNamespace(t, "forecast")
	oldSecret(t, ns, "app", "unused", true, 3*365)
	oldSecret(t, ns, "app", "used-lately", true, 3*365)
	cluster.SetLastUsed(t, ns, "used-lately", framework.DaysAgo(20))
	oldSecret(t, ns, "app", "used-long-ago", true, 3*365)
	cluster.SetLastUsed(t, ns, "used-long-ago", framework.DaysAgo(500))
	oldSecret(t, ns, "app", "manual", false, 3*365)
	oldSecret(t, ns, "app", "young", true, 100)
	oldSecret(t, ns, "app", "pod-read", true, 3*365)
	oldSecret(t, ns, "app", "cron-read", true, 3*365)
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x", EnvFrom: []corev1.EnvFromSource{{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "pod-read"}}}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}},
			Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "cron-read"}}}}}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format("2006-01-02")
	forecast := func() []string {
		var names []string
		for name, f := range audit(t, "migrate", "-n", ns, "--cleanup-period", "365d") {
			if f.Cleaner.Invalidate != "" && f.Cleaner.Invalidate <= today {
				names = append(names, ns+"/"+name)
			}
		}
		sort.Strings(names)
		return names
	}
	cleaned := func() []string {
		var names []string
		for _, k := range cluster.RunLegacyTokenCleanerOnce(t, 365*24*time.Hour).Invalidated {
			if strings.HasPrefix(k, ns+"/") {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		return names
	}

	// Tracking began last week: the cleaner's gate holds, and so does ours.
	trackSince(t, framework.DaysAgo(7))
	if f := forecast(); len(f) != 0 {
		t.Errorf("tracking began last week, yet the forecast invalidates %v today", f)
	}
	if c := cleaned(); len(c) != 0 {
		t.Errorf("tracking began last week, yet the cleaner invalidated %v", c)
	}

	cluster.SetTrackingSince(t, framework.DaysAgo(trackedDays))
	want := []string{ns + "/cron-read", ns + "/unused", ns + "/used-long-ago"}
	f := forecast()
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("forecast for today %v, want %v", f, want)
	}
	if c := cleaned(); strings.Join(c, " ") != strings.Join(f, " ") {
		t.Errorf("the real cleaner invalidated %v; the forecast said %v", c, f)
	}
	// The cleaner looked at pods only: the CronJob's next run fails now,
	// which the audit warned of.
	if w := audit(t, "migrate", "-n", ns)["cron-read"]; w.Verdict != legacy.VerdictSwitchWorkload {
		t.Errorf("cron-read: verdict %s", w.Verdict)
	}
}

// TestAuditLogEvidence: two legacy tokens used by clients with their own
// user agents, read back from the real apiserver's audit log; broken lines
// are counted and skipped; a corrupt gzip file stops the run.
func TestAuditLogEvidence(t *testing.T) {
	ns := cluster.CreateNamespace(t, "auditlog")
	a := oldSecret(t, ns, "app", "backup-token", true, 3*365)
	b := oldSecret(t, ns, "app", "ci-token", true, 3*365)
	use(t, cluster.TokenClient(t, a, "nightly-backup/1.0"), 3)
	use(t, cluster.TokenClient(t, b, "ci-runner/2.3"), 5)
	// A third token checked only through TokenReview (as a webhook or an
	// ingress does): kube-apiserver authenticates it on a request of its
	// own with no audit context (pkg/registry/authentication/tokenreview/
	// storage.go, REST.Create), so the log carries no annotation for it,
	// while the legacy validator still labels the Secret used.
	c := oldSecret(t, ns, "app", "reviewed-token", true, 3*365)
	rv, err := cluster.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: string(c.Data[corev1.ServiceAccountTokenKey])}}, metav1.CreateOptions{})
	if err != nil || !rv.Status.Authenticated {
		t.Fatalf("TokenReview of reviewed-token: %v %+v", err, rv.Status)
	}

	var got map[string]*legacy.Finding
	cluster.Eventually(t, 20*time.Second, func() (bool, error) {
		got = audit(t, "migrate", "-n", ns, "--audit-log", cluster.AuditLog)
		ea, eb := got["backup-token"].AuditLog, got["ci-token"].AuditLog
		return ea != nil && eb != nil && ea.Requests == 3 && eb.Requests == 5, fmt.Errorf("evidence %+v %+v", ea, eb)
	})
	if ua := got["backup-token"].AuditLog.UserAgents; len(ua) != 1 || !strings.HasPrefix(ua[0], "nightly-backup/1.0") {
		t.Errorf("backup-token user agents %v", ua)
	}
	if ua := got["ci-token"].AuditLog.UserAgents; len(ua) != 1 || !strings.HasPrefix(ua[0], "ci-runner/2.3") {
		t.Errorf("ci-token user agents %v", ua)
	}
	wantVerdict(t, got, "ci-token", legacy.VerdictUsed)
	if r := got["reviewed-token"]; r.AuditLog != nil || r.LastUsed == "" || r.Verdict != legacy.VerdictUsed {
		t.Errorf("reviewed-token: audit-log evidence %+v, last used %q, verdict %s; want none in the log, the label set, used", r.AuditLog, r.LastUsed, r.Verdict)
	}
	// doctor reads the apiserver's own counters of the same uses.
	if d := run(t, "doctor", "-n", ns, "--serviceaccount", "app", "-o", "json"); !strings.Contains(d.Stdout, `"legacy-token-metrics"`) || !strings.Contains(d.Stdout, "legacy_tokens_total") || !strings.Contains(d.Stdout, "since it started") {
		t.Errorf("doctor does not report the legacy token counters:\n%s", d.Stdout)
	}

	// A copy with a corrupt line, a truncated one and a huge one.
	dir := t.TempDir()
	log, err := os.ReadFile(cluster.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.log")
	extra := "not json at all\n" + `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x","annotations":{"authentication.k8s.io/legacy-token"` + "\n" +
		`{"kind":"Event","junk":"` + strings.Repeat("x", 5<<20) + "\"}\n"
	if err := os.WriteFile(broken, append(log, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "migrate", "-n", ns, "--audit-log", broken).MustCode(t, 0)
	if !strings.Contains(r.Stderr, "2 unparseable and 1 oversized line(s) skipped") {
		t.Errorf("skipped lines not counted:\n%s", r.Stderr)
	}
	gz := filepath.Join(dir, "corrupt.log.gz")
	if err := os.WriteFile(gz, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	oneLineError(t, run(t, "migrate", "-n", ns, "--audit-log", gz, "--apply", "--yes", "--backup-dir", backupDir(t)).MustCode(t, 2), "corrupt.log.gz")
	unchanged(t, a)
}

// runIn runs the plugin in-process with in as its standard input.
func runIn(t *testing.T, in io.Reader, args ...string) framework.Result {
	t.Helper()
	return framework.Run(in, cluster.Kubeconfig, args...)
}

// TestApplyAsksOnATerminal: on a pseudo-terminal, --apply shows the counts
// and asks; "n" changes nothing; "y" goes on. Without a terminal and
// without --yes it refuses.
func TestApplyAsksOnATerminal(t *testing.T) {
	ns := cluster.CreateNamespace(t, "prompt")
	s := oldSecret(t, ns, "app", "app-token", true, 3*365)

	dir := backupDir(t)
	oneLineError(t, run(t, "migrate", "-n", ns, "--apply", "--backup-dir", dir).MustCode(t, 2), "--yes")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused run made its backup folder: %v", err)
	}

	master, tty := framework.OpenPTY(t)
	if _, err := master.Write([]byte("n\n")); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, tty, "migrate", "-n", ns, "--apply", "--backup-dir", dir)
	if r.Code != 1 || !strings.Contains(r.Stderr, "will invalidate 1 Secret") || !strings.Contains(r.Stderr, "[y/N]") || !strings.Contains(r.Stderr, "nothing changed") {
		t.Fatalf("answer n: exit %d\n%s", r.Code, r.Stderr)
	}
	unchanged(t, s)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a declined run made its backup folder: %v", err)
	}

	if _, err := master.Write([]byte("y\n")); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, tty, "migrate", "-n", ns, "--apply", "--backup-dir", dir, "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/app-token"]; o.Result != legacy.OutInvalidated {
		t.Fatalf("answer y: outcome %+v", o)
	}
}
