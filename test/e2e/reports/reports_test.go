package reports

import (
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// Runs first (source order), before any test installs the CRDs: a
// cluster that does not serve them gets one line, exit 2, and the audit
// does not even run (nothing on stdout). After the CRDs are installed, a
// caller RBAC does not let write them gets one line naming what is
// missing, and nothing is written.
func TestReportRefusedWithoutCRDsOrRBAC(t *testing.T) {
	disc, err := discovery.NewDiscoveryClientForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disc.ServerResourcesForGroupVersion("openreports.io/v1alpha1"); err == nil {
		t.Skip("the OpenReports CRDs are already installed (run this test first, or alone)")
	}
	ns := cluster.CreateNamespace(t, "norep")
	secret(t, ns, "tok", 3*365, nil)
	r := run(t, "migrate", "-n", ns, "--report").MustCode(t, 2)
	oneLine(t, r, "the cluster does not serve reports.openreports.io and clusterreports.openreports.io (openreports.io/v1alpha1): install the OpenReports CRDs")
	if r.Stdout != "" {
		t.Errorf("the audit ran before the refusal:\n%s", r.Stdout)
	}
	r = run(t, "doctor", "--report").MustCode(t, 2)
	oneLine(t, r, "the cluster does not serve clusterreports.openreports.io")

	installCRDs(t)
	// A service account with no RBAC: may create SelfSubjectAccessReviews
	// (every authenticated user may), nothing else.
	r = run(t, "migrate", "-n", ns, "--report", "--as", "system:serviceaccount:"+ns+":sa").MustCode(t, 2)
	oneLine(t, r, "forbidden: you may not list reports.openreports.io, create reports.openreports.io, patch reports.openreports.io, delete reports.openreports.io in namespace "+ns)
	if got := migrateReports(t, ns); len(got) != 0 {
		t.Errorf("written despite the refusal: %v", names(got))
	}
	if _, err := reportsClient(t).OpenreportsV1alpha1().ClusterReports().Get(ctx, "bound-token-migrate", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterReport written despite the refusal: %v", err)
	}
}

// A report is accepted by the real CRDs server-side; counting its results
// by result and severity with kubectl and jq gives the plugin's own
// summary mapped by the documented table; a rerun after a change replaces
// the results (a deleted Secret's result is gone, a relabelled one's
// changes).
func TestReportAcceptedCountedAndReplaced(t *testing.T) {
	installCRDs(t)
	ns := cluster.CreateNamespace(t, "rep")
	secret(t, ns, "old", 3*365, nil) // invalidate
	secret(t, ns, "used", 3*365, map[string]string{legacy.LabelLastUsed: framework.Day(0)})
	secret(t, ns, "fresh", 0, nil)                                                                   // unknown: too new
	secret(t, ns, "gone", 3*365, map[string]string{legacy.LabelInvalidSince: framework.Day(-200)})   // delete
	secret(t, ns, "waiting", 3*365, map[string]string{legacy.LabelInvalidSince: framework.Day(-10)}) // wait

	verdicts := auditSummary(t, "-n", ns)
	for _, v := range []string{legacy.VerdictInvalidate, legacy.VerdictUsed, legacy.VerdictUnknown, legacy.VerdictDelete, legacy.VerdictWait} {
		if verdicts[v] != 1 {
			t.Fatalf("setup: verdicts %v, want one %s", verdicts, v)
		}
	}
	sameCounts(t, "first run", jqCount(t, ns), expected(verdicts))
	reps := migrateReports(t, ns)
	if len(reps) != 1 {
		t.Fatalf("reports %v, want bound-token-migrate-0", names(reps))
	}
	rep := reps["bound-token-migrate-0"]
	if s := rep.Summary; s.Fail != 2 || s.Warn != 1 || s.Pass != 1 || s.Skip != 1 {
		t.Errorf("summary %+v", s)
	}
	res := resultsBySecret(t, ns)
	old := res["old"]
	if old.Source != "kubectl-bound-token" || old.Policy != "legacy-serviceaccount-token" || old.Rule != "invalidate" || old.Timestamp.Seconds == 0 ||
		old.Subjects[0].UID == "" || old.Properties["serviceAccount"] != "sa" || old.Description == "" {
		t.Errorf("result of old: %+v", old)
	}
	cr, err := reportsClient(t).OpenreportsV1alpha1().ClusterReports().Get(ctx, "bound-token-migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.Results) == 0 || cr.Results[0].Rule != "use-tracking" || cr.Results[0].Result != "pass" {
		t.Errorf("ClusterReport results: %+v", cr.Results)
	}

	// The change: old deleted, fresh used today.
	if err := cluster.Client.CoreV1().Secrets(ns).Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	label(t, ns, "fresh", map[string]string{legacy.LabelLastUsed: framework.Day(0)})
	verdicts = auditSummary(t, "-n", ns)
	sameCounts(t, "rerun", jqCount(t, ns), expected(verdicts))
	res = resultsBySecret(t, ns)
	if _, ok := res["old"]; ok {
		t.Error("the deleted Secret's result is still there")
	}
	if res["fresh"].Rule != legacy.VerdictUsed || res["fresh"].Result != "warn" {
		t.Errorf("fresh after the change: %s/%s", res["fresh"].Rule, res["fresh"].Result)
	}

	// doctor writes its own ClusterReport, never migrate's objects.
	cr, err = reportsClient(t).OpenreportsV1alpha1().ClusterReports().Get(ctx, "bound-token-migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep = migrateReports(t, ns)["bound-token-migrate-0"]
	run(t, "doctor", "--report").Must(t, 0, "ClusterReport bound-token-doctor")
	dr, err := reportsClient(t).OpenreportsV1alpha1().ClusterReports().Get(ctx, "bound-token-doctor", metav1.GetOptions{})
	if err != nil || len(dr.Results) == 0 || dr.Results[0].Policy != "bound-token-doctor" || dr.Labels["bound-token.kubectl.io/report"] != "doctor" {
		t.Fatalf("doctor's ClusterReport: %v %+v", err, dr)
	}
	after, err := reportsClient(t).OpenreportsV1alpha1().ClusterReports().Get(ctx, "bound-token-migrate", metav1.GetOptions{})
	if err != nil || after.ResourceVersion != cr.ResourceVersion {
		t.Errorf("doctor wrote migrate's ClusterReport: %v", err)
	}
	if mig := migrateReports(t, ns); len(mig) != 1 || mig["bound-token-migrate-0"].ResourceVersion != rep.ResourceVersion {
		t.Errorf("doctor changed migrate's Reports: %v", names(mig))
	}
}

// 2,500 Secrets in one namespace make three Reports of 1,000, 1,000 and
// 500 results; after 1,000 are deleted, a rerun writes two and deletes
// the third.
func TestReportChunksLargeNamespace(t *testing.T) {
	installCRDs(t)
	ns := cluster.CreateNamespace(t, "big")
	createSecrets(t, ns, "tok", 2500, func(i int) map[string]string {
		if i < 1500 {
			return map[string]string{"batch": "one"}
		}
		return map[string]string{"batch": "two"}
	})
	run(t, "migrate", "-n", ns, "--report", "-o", "name").Must(t, 0, "OpenReports: wrote 3 Reports (2500 results) in 1 namespace, 0 stale Reports deleted")
	reps := migrateReports(t, ns)
	if fmt.Sprint(names(reps)) != "[bound-token-migrate-0 bound-token-migrate-1 bound-token-migrate-2]" {
		t.Fatalf("reports %v", names(reps))
	}
	for i, want := range []int{1000, 1000, 500} {
		rep := reps[fmt.Sprintf("bound-token-migrate-%d", i)]
		if len(rep.Results) != want || rep.Labels["bound-token.kubectl.io/report-chunk"] != fmt.Sprint(i) || rep.Summary.Skip != want {
			t.Errorf("chunk %d: %d results, labels %v, summary %+v", i, len(rep.Results), rep.Labels, rep.Summary)
		}
	}
	if err := cluster.Client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "batch=two"}); err != nil {
		t.Fatal(err)
	}
	run(t, "migrate", "-n", ns, "--report", "-o", "name").Must(t, 0, "OpenReports: wrote 2 Reports (1500 results) in 1 namespace, 1 stale Report deleted")
	reps = migrateReports(t, ns)
	if fmt.Sprint(names(reps)) != "[bound-token-migrate-0 bound-token-migrate-1]" {
		t.Fatalf("after the rerun: reports %v", names(reps))
	}
	if n := len(resultsBySecret(t, ns)); n != 1500 {
		t.Errorf("after the rerun: %d results, want 1500", n)
	}
}

// A narrowed audit (-l, Secret names) replaces only the results of the
// Secrets it judged and keeps the others as they were; a namespace whose
// legacy Secrets are all gone loses its Reports on the next full audit of
// it, and another namespace's are untouched.
func TestReportNarrowedKeepsOthersEmptyNamespaceLoses(t *testing.T) {
	installCRDs(t)
	ns := cluster.CreateNamespace(t, "narrow")
	other := cluster.CreateNamespace(t, "other")
	for _, n := range []string{"a", "b", "c"} {
		secret(t, ns, n, 3*365, nil)
	}
	secret(t, other, "x", 3*365, nil)
	auditSummary(t, "-n", ns)
	auditSummary(t, "-n", other)
	first := resultsBySecret(t, ns)
	if len(first) != 3 {
		t.Fatalf("first run: %d results", len(first))
	}

	label(t, ns, "b", map[string]string{"pick": "yes", legacy.LabelLastUsed: framework.Day(0)})
	if v := auditSummary(t, "-n", ns, "-l", "pick=yes"); v[legacy.VerdictUsed] != 1 || len(v) != 1 {
		t.Fatalf("narrowed run judged %v", v)
	}
	res := resultsBySecret(t, ns)
	if len(res) != 3 || res["b"].Rule != legacy.VerdictUsed {
		t.Fatalf("after -l: %d results, b is %q", len(res), res["b"].Rule)
	}
	for _, n := range []string{"a", "c"} {
		if res[n].Timestamp != first[n].Timestamp || res[n].Rule != first[n].Rule {
			t.Errorf("%s was not judged, yet its result changed: %+v", n, res[n])
		}
	}
	// By name: the same.
	auditSummary(t, "-n", ns, "a")
	res = resultsBySecret(t, ns)
	if len(res) != 3 || res["b"].Rule != legacy.VerdictUsed || res["c"].Timestamp != first["c"].Timestamp {
		t.Errorf("after naming a: %d results, b %q", len(res), res["b"].Rule)
	}

	if err := cluster.Client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: "type=kubernetes.io/service-account-token"}); err != nil {
		t.Fatal(err)
	}
	run(t, "migrate", "-n", ns, "--report").Must(t, 0, "OpenReports: wrote 0 Reports (0 results) in 0 namespaces, 1 stale Report deleted")
	if got := migrateReports(t, ns); len(got) != 0 {
		t.Errorf("namespace with no legacy Secret left still has %v", names(got))
	}
	if got := resultsBySecret(t, other); len(got) != 1 {
		t.Errorf("another namespace's report changed: %d results", len(got))
	}
}
