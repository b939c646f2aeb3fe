package migrate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// counts reads the summary counts of -o json.
func counts(t *testing.T, stdout string) map[string]int {
	t.Helper()
	var l struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	return l.Counts
}

// TestFaultsApplyAndRestore1000 runs apply and restore (both modes) over
// 1,000 Secrets through a proxy that throttles, fails, resets (also after
// the apiserver did the work) and slows requests. Every Secret must end in
// its intended state or untouched with a backup, and the printed counts
// must match the cluster.
func TestFaultsApplyAndRestore1000(t *testing.T) {
	const n = 1000
	ns := cluster.CreateNamespace(t, "faults")
	createMany(t, ns, n, 25)
	before := tokensIn(t, ns)
	p, err := faultproxy.Start(cluster, faultproxy.Config{
		Seed: 7, Rate429: 0.03, Rate500: 0.02, Rate503: 0.03,
		RateResetBefore: 0.02, RateResetAfter: 0.02, RateSlow: 0.02,
		SlowDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fast := []string{"--qps", "1000", "--burst", "1000", "-o", "json"}
	state := func() (invalid, present int) {
		t.Helper()
		l, err := cluster.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Items {
			if s.Type != corev1.SecretTypeServiceAccountToken {
				continue
			}
			present++
			if _, ok := s.Labels[legacy.LabelInvalidSince]; ok {
				invalid++
			}
		}
		return invalid, present
	}

	// Each command runs through the proxy; what it reports must match the
	// cluster. A call that outlives its retries is reported, and running
	// the same command again (also through the proxy) finishes the job.
	// check gets the counts and how many failures say a try may have gone
	// through (the look afterwards failed too): only those may be done in
	// the cluster without being reported done.
	twice := func(what string, args []string, check func(c map[string]int, unsure int)) {
		t.Helper()
		for attempt := 1; attempt <= 2; attempt++ {
			r := runAs(t, p.Kubeconfig, append(args, fast...)...)
			c := counts(t, r.Stdout)
			t.Logf("%s (run %d): exit %d, counts %v; proxy %s", what, attempt, r.Code, c, p.Stats())
			logFailures(t, r.Stdout)
			check(c, unsure(t, r.Stdout))
			if r.Code == 0 {
				return
			}
			if r.Code != 1 {
				t.Fatalf("%s: exit %d\n%s", what, r.Code, r.Stderr)
			}
		}
		t.Fatalf("%s did not finish in two runs", what)
	}

	dir := backupDir(t)
	done := 0
	twice("invalidate", []string{"migrate", "-n", ns, "--apply", "--yes", "--include-unknown", "--backup-dir", dir}, func(c map[string]int, unsure int) {
		done += c[legacy.OutInvalidated]
		if invalid, present := state(); !agree(done, invalid, unsure) || present != n {
			t.Fatalf("reported %d invalidated so far (%d unsure), the cluster has %d invalid of %d", done, unsure, invalid, present)
		}
	})
	if invalid, _ := state(); invalid != n {
		t.Fatalf("%d of %d invalid after apply", invalid, n)
	}
	done = 0
	twice("restore", []string{"restore", "--from", dir}, func(c map[string]int, unsure int) {
		done += c[legacy.OutLabelRemoved]
		if invalid, _ := state(); !agree(done, n-invalid, unsure) {
			t.Fatalf("reported %d re-enabled so far (%d unsure), the cluster has %d", done, unsure, n-invalid)
		}
	})

	invalidLongAgo(t, ns)
	dir = backupDir(t)
	done = 0
	twice("delete", []string{"migrate", "-n", ns, "--apply", "--yes", "--mode", "delete", "--backup-dir", dir}, func(c map[string]int, unsure int) {
		done += c[legacy.OutDeleted] + c[backup.OutDeletedRefLeft]
		if _, present := state(); !agree(done, n-present, unsure) {
			t.Fatalf("reported %d deleted so far (%d unsure), the cluster lost %d", done, unsure, n-present)
		}
	})
	twice("restore", []string{"restore", "--from", dir}, func(map[string]int, int) {})
	sas, err := cluster.Client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, sa := range sas.Items {
		listed += len(sa.Secrets)
	}
	if listed != n {
		t.Fatalf("service accounts list %d Secrets after restore, want %d", listed, n)
	}
	after := tokensIn(t, ns)
	for name, tok := range before {
		if after[name] != tok {
			t.Fatalf("%s did not come back with its token", name)
		}
	}
	if p.Stats().Faults() == 0 {
		t.Fatal("the proxy injected no faults: the test tested nothing")
	}
}

// agree: the cluster holds every change reported done, and beyond them at
// most the unsure ones.
func agree(reported, inCluster, unsure int) bool {
	return reported <= inCluster && inCluster <= reported+unsure
}

// unsure counts the failures that say a try may have gone through.
func unsure(t *testing.T, stdout string) int {
	t.Helper()
	n := 0
	for _, o := range framework.SecretOutcomes(t, stdout) {
		if o.Failed() && strings.Contains(o.Message, retry.RunAgain) {
			n++
		}
	}
	return n
}

func logFailures(t *testing.T, stdout string) {
	t.Helper()
	for _, o := range framework.SecretOutcomes(t, stdout) {
		if o.Failed() {
			t.Logf("not done: %s/%s %s: %s", o.Namespace, o.Name, o.Result, o.Message)
		}
	}
}
