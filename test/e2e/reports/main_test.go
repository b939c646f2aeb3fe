// Package reports tests migrate --report and doctor --report against a
// real kube-apiserver, etcd and kube-controller-manager, with the real
// OpenReports CRDs read from the module go.mod pins (framework.InstallCRD):
// the objects the plugin writes must pass the CRDs' own schema,
// server-side, and be counted by kubectl and jq as the plugin counts them.
package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

// trackedDays: use is tracked since this many days ago, as on a cluster
// upgraded to 1.28 long since, so that old Secrets get real verdicts.
const trackedDays = 400

func TestMain(m *testing.M) {
	// JSON storage lets tests backdate Secrets through etcd; the token
	// controller fills thousands of Secrets in the chunking test.
	framework.Main(m, framework.Options{KCMArgs: []string{"--kube-api-qps=500", "--kube-api-burst=1000"}, JSONStorage: true,
		TrackingSince: framework.DaysAgo(trackedDays)},
		func(c *framework.Cluster) { cluster = c })
}

func run(t *testing.T, args ...string) framework.Result {
	t.Helper()
	return framework.Run(&bytes.Buffer{}, cluster.Kubeconfig, args...)
}

// crds are the two CRDs --report writes.
var crds = []string{"reports.openreports.io", "clusterreports.openreports.io"}

// installCRDs installs the real OpenReports CRDs, once (they stay).
func installCRDs(t *testing.T) {
	t.Helper()
	for _, n := range crds {
		cluster.InstallCRD(t, n, false)
	}
}

func reportsClient(t *testing.T) versioned.Interface {
	t.Helper()
	c, err := versioned.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// migrateReports lists migrate's Reports in ns, by chunk name.
func migrateReports(t *testing.T, ns string) map[string]v1alpha1.Report {
	t.Helper()
	l, err := reportsClient(t).OpenreportsV1alpha1().Reports(ns).List(ctx, metav1.ListOptions{LabelSelector: "bound-token.kubectl.io/report=migrate"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1alpha1.Report{}
	for _, r := range l.Items {
		out[r.Name] = r
	}
	return out
}

// resultsBySecret indexes the results of ns's Reports by Secret name.
func resultsBySecret(t *testing.T, ns string) map[string]v1alpha1.ReportResult {
	t.Helper()
	out := map[string]v1alpha1.ReportResult{}
	for _, r := range migrateReports(t, ns) {
		for _, res := range r.Results {
			for _, s := range res.Subjects {
				if s.Kind == "Secret" {
					if _, dup := out[s.Name]; dup {
						t.Errorf("two results for Secret %s", s.Name)
					}
					out[s.Name] = res
				}
			}
		}
	}
	return out
}

// secret creates a legacy token Secret of sa (listed in its .secrets),
// created created days ago, with labels (last-used, invalid-since).
func secret(t *testing.T, ns, name string, createdDaysAgo int, labels map[string]string) {
	t.Helper()
	cluster.CreateLegacySecret(t, ns, "sa", name, true)
	if createdDaysAgo > 0 {
		cluster.BackdateSecret(t, ns, name, framework.DaysAgo(createdDaysAgo))
	}
	label(t, ns, name, labels)
}

func label(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	if len(labels) == 0 {
		return
	}
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if _, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// auditSummary runs the audit with --report and returns the plugin's own
// count of Secrets per verdict (-o json's summary).
func auditSummary(t *testing.T, args ...string) map[string]int {
	t.Helper()
	r := run(t, append([]string{"migrate", "--report", "-o", "json"}, args...)...).Must(t, 0, "OpenReports: wrote ")
	var out struct {
		Summary legacy.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	return out.Summary.Verdicts
}

// documented is the README's mapping of verdicts to result/severity,
// written out here so that a change of the code's mapping fails the test.
var documented = map[string]string{
	legacy.VerdictInvalidate:     "fail/medium",
	legacy.VerdictDelete:         "fail/low",
	legacy.VerdictUsed:           "warn/high",
	legacy.VerdictSwitchWorkload: "warn/high",
	legacy.VerdictInUseFailing:   "warn/high",
	legacy.VerdictRestoredOnUse:  "warn/high",
	legacy.VerdictWait:           "pass/info",
	legacy.VerdictUnknown:        "skip/medium",
}

// expected turns the plugin's verdict counts into result/severity counts.
func expected(verdicts map[string]int) map[string]int {
	out := map[string]int{}
	for v, n := range verdicts {
		if n > 0 {
			out[documented[v]] += n
		}
	}
	return out
}

// jqCount counts the results of ns's Reports by result and severity
// from `kubectl get reports -o json`, with jq (on this machine: /usr/bin/jq;
// the same count is made in Go from the same JSON when jq is missing).
func jqCount(t *testing.T, ns string) map[string]int {
	t.Helper()
	kubectl, err := framework.ControlPlaneBinary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	get := exec.Command(kubectl, "--kubeconfig", cluster.Kubeconfig, "get", "reports.openreports.io", "-n", ns, "-o", "json")
	js, err := get.Output()
	if err != nil {
		t.Fatalf("kubectl get reports: %v", err)
	}
	out := map[string]int{}
	if jq, err := exec.LookPath("jq"); err == nil {
		c := exec.Command(jq, "-c", `[.items[].results[] | "\(.result)/\(.severity)"] | group_by(.) | map({key: .[0], value: length}) | from_entries`)
		c.Stdin = bytes.NewReader(js)
		b, err := c.Output()
		if err != nil {
			t.Fatalf("jq: %v", err)
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("jq output %s: %v", b, err)
		}
		return out
	}
	t.Log("jq not found: counting the kubectl JSON in Go")
	var l v1alpha1.ReportList
	if err := json.Unmarshal(js, &l); err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Items {
		for _, res := range r.Results {
			out[string(res.Result)+"/"+string(res.Severity)]++
		}
	}
	return out
}

func sameCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: results by result/severity %v, want %v (the plugin's summary)", what, got, want)
	}
}

// createSecrets creates n legacy token Secrets NAME-00000... of sa in ns
// (not listed: made by hand), concurrently, with labels(i).
func createSecrets(t *testing.T, ns, prefix string, n int, labels func(int) map[string]string) {
	t.Helper()
	if _, err := cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "sa", metav1.GetOptions{}); err != nil {
		cluster.CreateServiceAccount(t, ns, "sa")
	}
	cluster.CreateSecrets(t, ns, n, func(i int) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", prefix, i), Labels: labels(i),
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"}},
			Type: corev1.SecretTypeServiceAccountToken,
		}
	})
}

func names(m map[string]v1alpha1.Report) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func oneLine(t *testing.T, r framework.Result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], want) {
		t.Fatalf("want one error line containing %q, got:\n%s", want, r.Stderr)
	}
}
