package migrate

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// lostThenUnavailable stages the worst case for a write: the first try
// reaches the apiserver and its answer is lost, every later try gets 503
// until the retries run out. look says whether the read that follows
// (a GET of the same Secret) goes through.
func lostThenUnavailable(method, path string, look bool) func(*http.Request) faultproxy.Fault {
	var tries atomic.Int64
	return func(r *http.Request) faultproxy.Fault {
		switch {
		case r.Method == method && r.URL.Path == path:
			if tries.Add(1) == 1 {
				return faultproxy.ResetAfter
			}
			return faultproxy.Unavailable
		case !look && r.Method == http.MethodGet && r.URL.Path == path:
			return faultproxy.Unavailable
		}
		return faultproxy.NoFault
	}
}

// When a change's retries run out after a try whose answer was lost, the
// tool looks at the Secret before calling it a failure: the change went
// through, so it is reported done. When even that look fails, the failure
// says a try may have gone through, and the same command run again
// finishes the job.
func TestChangeWhoseAnswerWasLostIsReportedDone(t *testing.T) {
	secretPath := func(ns string) string { return "/api/v1/namespaces/" + ns + "/secrets/tok-000" }
	start := func(t *testing.T, script func(*http.Request) faultproxy.Fault) *faultproxy.Proxy {
		t.Helper()
		p, err := faultproxy.Start(cluster, faultproxy.Config{Script: script, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	result := func(t *testing.T, r framework.Result, want string) backup.Outcome {
		t.Helper()
		for _, o := range framework.SecretOutcomes(t, r.Stdout) {
			if o.Name == "tok-000" && o.Kind == "" {
				if o.Result != want {
					t.Fatalf("tok-000: %s (%s), want %s\nstderr: %s", o.Result, o.Message, want, r.Stderr)
				}
				return o
			}
		}
		t.Fatalf("no outcome for tok-000:\n%s", r.Stdout)
		return backup.Outcome{}
	}
	get := func(t *testing.T, ns string) (map[string]string, bool) {
		t.Helper()
		s, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "tok-000", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return s.Labels, true
	}

	t.Run("delete", func(t *testing.T) {
		ns := cluster.CreateNamespace(t, "lost")
		createMany(t, ns, 2, 2)
		invalidLongAgo(t, ns)
		p := start(t, lostThenUnavailable(http.MethodDelete, secretPath(ns), true))
		r := runAs(t, p.Kubeconfig, "migrate", "-n", ns, "--apply", "--yes", "--mode", "delete", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
		result(t, r, legacy.OutDeleted)
		if _, exists := get(t, ns); exists {
			t.Fatal("tok-000 still exists")
		}
	})

	t.Run("invalidate", func(t *testing.T) {
		ns := cluster.CreateNamespace(t, "lost")
		createMany(t, ns, 2, 2)
		p := start(t, lostThenUnavailable(http.MethodPatch, secretPath(ns), true))
		r := runAs(t, p.Kubeconfig, "migrate", "-n", ns, "--apply", "--yes", "--include-unknown", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
		result(t, r, legacy.OutInvalidated)
		if labels, _ := get(t, ns); labels[legacy.LabelInvalidSince] == "" {
			t.Fatalf("tok-000 not invalidated: %v", labels)
		}
	})

	t.Run("delete, and the look fails too", func(t *testing.T) {
		ns := cluster.CreateNamespace(t, "lost")
		createMany(t, ns, 2, 2)
		invalidLongAgo(t, ns)
		dir := backupDir(t)
		p := start(t, lostThenUnavailable(http.MethodDelete, secretPath(ns), false))
		args := []string{"migrate", "-n", ns, "--apply", "--yes", "--mode", "delete", "--backup-dir", dir, "-o", "json"}
		r := runAs(t, p.Kubeconfig, args...).MustCode(t, 1)
		if o := result(t, r, backup.OutFailed); !strings.Contains(o.Message, retry.RunAgain) {
			t.Fatalf("the failure does not say the delete may have gone through: %s", o.Message)
		}
		if _, exists := get(t, ns); exists {
			t.Fatal("the staged delete did not reach the apiserver")
		}
		p.SetEnabled(false)
		runAs(t, p.Kubeconfig, args...).MustCode(t, 0)
		sa, err := cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "sa-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range sa.Secrets {
			if ref.Name == "tok-000" {
				t.Fatalf("the second run left tok-000 in the service account: %v", sa.Secrets)
			}
		}
	})

	t.Run("restore re-creates", func(t *testing.T) {
		ns := cluster.CreateNamespace(t, "lost")
		createMany(t, ns, 2, 2)
		invalidLongAgo(t, ns)
		before := tokensIn(t, ns)
		dir := backupDir(t)
		runAs(t, cluster.Kubeconfig, "migrate", "-n", ns, "--apply", "--yes", "--mode", "delete", "--backup-dir", dir, "-o", "json").MustCode(t, 0)
		p := start(t, lostThenUnavailable(http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", true))
		r := runAs(t, p.Kubeconfig, "restore", "--from", dir, "--only", ns+"/tok-000", "-o", "json").MustCode(t, 0)
		result(t, r, legacy.OutRecreated)
		if after := tokensIn(t, ns); after["tok-000"] != before["tok-000"] {
			t.Fatal("tok-000 did not come back with its token")
		}
	})

	t.Run("restore re-enables", func(t *testing.T) {
		ns := cluster.CreateNamespace(t, "lost")
		createMany(t, ns, 2, 2)
		dir := backupDir(t)
		runAs(t, cluster.Kubeconfig, "migrate", "-n", ns, "--apply", "--yes", "--include-unknown", "--backup-dir", dir, "-o", "json").MustCode(t, 0)
		p := start(t, lostThenUnavailable(http.MethodPatch, secretPath(ns), true))
		r := runAs(t, p.Kubeconfig, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
		result(t, r, legacy.OutLabelRemoved)
		if labels, _ := get(t, ns); labels[legacy.LabelInvalidSince] != "" {
			t.Fatalf("tok-000 still invalid: %v", labels)
		}
	})
}
