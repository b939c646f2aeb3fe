package migrate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// killAt starts the plugin and SIGKILLs it once the index holds at least
// lines lines. It reports false when the run ended before that.
func killAt(t *testing.T, dir string, lines int, args ...string) bool {
	t.Helper()
	killed, stderr := cluster.KillPluginWhen(t, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, backup.IndexFile))
		return bytes.Count(data, []byte("\n")) >= lines
	}, args...)
	if !killed {
		t.Logf("run ended before %d index lines: %s", lines, stderr)
	}
	return killed
}

// journal counts the done records per result and object.
func journal(t *testing.T, dir string) map[string]map[string]int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, backup.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r backup.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("index line %q: %v", line, err)
		}
		if r.Op != backup.OpDone {
			continue
		}
		if out[r.Result] == nil {
			out[r.Result] = map[string]int{}
		}
		out[r.Result][r.Namespace+"/"+r.Name]++
	}
	return out
}

func tokensIn(t *testing.T, ns string) map[string]string {
	t.Helper()
	l, err := cluster.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, s := range l.Items {
		if s.Type == corev1.SecretTypeServiceAccountToken {
			m[s.Name] = string(s.Data[corev1.ServiceAccountTokenKey])
		}
	}
	return m
}

func TestKilledDeleteResumesAndRestores(t *testing.T) {
	const n, perSA = 300, 10
	ns := cluster.CreateNamespace(t, "kill-delete")
	start := time.Now()
	createMany(t, ns, n, perSA)
	invalidLongAgo(t, ns)
	t.Logf("created %d filled Secrets in %s", n, time.Since(start))
	before := tokensIn(t, ns)
	dir := backupDir(t)
	args := []string{"migrate", "-n", ns, "--apply", "--yes", "--mode", "delete", "--backup-dir", dir, "--qps", "1000", "--burst", "1000"}

	// Early (backups only), middle, late: about three index lines per Secret.
	killed := 0
	for _, at := range []int{20, 300, 700} {
		if killAt(t, dir, at, args...) {
			killed++
		}
	}
	if killed < 2 {
		t.Fatalf("only %d of 3 kills landed mid-run; the test did not test resuming", killed)
	}
	t.Logf("%d kills landed, %s", killed, time.Since(start))
	run(t, args...).MustCode(t, 0)
	t.Logf("resumed to the end, %s", time.Since(start))

	if left := tokensIn(t, ns); len(left) != 0 {
		t.Fatalf("%d Secrets left after the resumed delete", len(left))
	}
	sas, err := cluster.Client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas.Items {
		if len(sa.Secrets) != 0 {
			t.Fatalf("service account %s still lists %v", sa.Name, sa.Secrets)
		}
	}
	j := journal(t, dir)
	for _, res := range []string{legacy.ResultDeleted, legacy.ResultRefRemoved} {
		if len(j[res]) != n {
			t.Errorf("%d Secrets recorded %s, want %d", len(j[res]), res, n)
		}
		for k, c := range j[res] {
			if c != 1 {
				t.Errorf("%s recorded %s %d times: done twice", k, res, c)
			}
		}
	}

	run(t, "restore", "--from", dir, "--qps", "1000", "--burst", "1000").MustCode(t, 0)
	t.Logf("restored, %s", time.Since(start))
	after := tokensIn(t, ns)
	if len(after) != n {
		t.Fatalf("restore brought back %d of %d Secrets", len(after), n)
	}
	for name, tok := range before {
		if after[name] != tok {
			t.Fatalf("%s came back with another token", name)
		}
	}
	sas, _ = cluster.Client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	listed := 0
	for _, sa := range sas.Items {
		listed += len(sa.Secrets)
	}
	if listed != n {
		t.Fatalf("service accounts list %d Secrets after restore, want %d", listed, n)
	}
}

func TestKilledInvalidateResumesAndRestores(t *testing.T) {
	const n = 200
	ns := cluster.CreateNamespace(t, "kill-inval")
	createMany(t, ns, n, 50)
	dir := backupDir(t)
	args := []string{"migrate", "-n", ns, "--apply", "--yes", "--include-unknown", "--backup-dir", dir, "--qps", "1000", "--burst", "1000"}
	killed := 0
	for _, at := range []int{50, 250} {
		if killAt(t, dir, at, args...) {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("no kill landed mid-run; the test did not test resuming")
	}
	run(t, args...).MustCode(t, 0)
	check := func(wantLabel bool) {
		t.Helper()
		l, err := cluster.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, s := range l.Items {
			if s.Type != corev1.SecretTypeServiceAccountToken {
				continue
			}
			if _, has := s.Labels[legacy.LabelInvalidSince]; has != wantLabel {
				t.Fatalf("%s: invalid-since label present=%v, want %v", s.Name, has, wantLabel)
			}
			got++
		}
		if got != n {
			t.Fatalf("%d Secrets, want %d", got, n)
		}
	}
	check(true)
	j := journal(t, dir)
	if len(j[legacy.ResultInvalidated]) != n {
		t.Errorf("%d Secrets recorded invalidated, want %d", len(j[legacy.ResultInvalidated]), n)
	}
	for k, c := range j[legacy.ResultInvalidated] {
		if c != 1 {
			t.Errorf("%s invalidated %d times", k, c)
		}
	}
	run(t, "restore", "--from", dir, "--qps", "1000", "--burst", "1000").MustCode(t, 0)
	check(false)
}
