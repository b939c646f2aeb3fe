package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// Workload of the issue: 2,000 legacy Secrets over 200 namespaces.
const (
	benchNamespaces = 200
	benchPerNS      = 10
	benchWorkers    = 8
	// The shell loop costs two kubectl processes per Secret; it runs over
	// a sample and is scaled to the whole set (time per Secret is flat).
	benchShellSample = 100
)

// BenchmarkMigrate measures audit, apply (invalidate) and restore over
// 2,000 Secrets, side by side with (a) the shell loop a user would write
// (kubectl get + kubectl label per Secret, backup included) and (b) a
// minimal client-go program doing the same patches with the same
// concurrency (the ceiling, ./ceiling). All three run as processes. Each phase runs once per iteration; run it
// with -benchtime 1x.
func BenchmarkMigrate(b *testing.B) {
	kubectl := kubectlPath(b)
	ceiling := buildCeiling(b)
	benchSetup(b)
	var m struct{ audit, apply, restore, cgAudit, cgApply, cgRestore, shApply, shRestore time.Duration }
	rss := int64(0)
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "backup")
		common := []string{"--qps", "1000", "--burst", "1000", "--concurrency", fmt.Sprint(benchWorkers)}
		d, r := timeBinary(b, append([]string{"migrate", "-A", "-l", "bench=migrate", "-o", "json"}, common[:4]...)...)
		m.audit += d
		rss = max(rss, r)
		d, _ = timeBinary(b, append([]string{"migrate", "-A", "-l", "bench=migrate", "--apply", "--yes", "--include-unknown", "--backup-dir", dir}, common...)...)
		m.apply += d
		checkInvalid(b, true)
		d, _ = timeBinary(b, append([]string{"restore", "--from", dir}, common...)...)
		m.restore += d
		checkInvalid(b, false)

		m.cgAudit += timeCeiling(b, ceiling, "audit")
		m.cgApply += timeCeiling(b, ceiling, "invalidate")
		checkInvalid(b, true)
		m.cgRestore += timeCeiling(b, ceiling, "restore")
		checkInvalid(b, false)

		shA, shR := shellLoop(b, kubectl, b.TempDir())
		m.shApply += shA
		m.shRestore += shR
	}
	n := float64(b.N)
	sec := func(d time.Duration) float64 { return d.Seconds() / n }
	scale := float64(benchNamespaces*benchPerNS) / benchShellSample
	// Pairs for make bench's table (bench/rows.txt): ours-X against alt-X.
	pair := func(metric string, ours, alt float64) {
		b.ReportMetric(ours, "ours-"+metric)
		b.ReportMetric(alt, "alt-"+metric)
	}
	pair("audit-s", sec(m.audit), sec(m.cgAudit))
	pair("audit-peak-RSS-MB", float64(rss)/1024, 100) // the ceiling
	pair("apply-s", sec(m.apply), sec(m.cgApply))
	pair("apply-vs-shell-s", sec(m.apply), sec(m.shApply)*scale)
	pair("restore-s", sec(m.restore), sec(m.cgRestore))
	pair("restore-vs-shell-s", sec(m.restore), sec(m.shRestore)*scale)
}

func kubectlPath(b *testing.B) string {
	p, err := framework.ControlPlaneBinary("kubectl")
	if err != nil {
		b.Fatal(err)
	}
	return p
}

var setupOnce sync.Once

func benchSetup(b *testing.B) {
	// -count N calls the benchmark N times in one process: one data set.
	setupOnce.Do(func() { createBenchSecrets(b) })
}

func createBenchSecrets(b *testing.B) {
	c := cluster.Client.CoreV1()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, benchNamespaces*(benchPerNS+3))
	for i := 0; i < benchNamespaces; i++ {
		ns := cluster.CreateNamespace(b, "bench")
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := c.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
			errs <- err
			var refs []corev1.ObjectReference
			for j := 0; j < benchPerNS; j++ {
				name := fmt.Sprintf("app-token-%d", j)
				_, err := c.Secrets(ns).Create(ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "migrate"},
						Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
					Type: corev1.SecretTypeServiceAccountToken,
				}, metav1.CreateOptions{})
				errs <- err
				refs = append(refs, corev1.ObjectReference{Name: name})
			}
			patch, _ := json.Marshal(map[string]any{"secrets": refs})
			_, err = c.ServiceAccounts(ns).Patch(ctx, "app", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			mu.Lock()
			defer mu.Unlock()
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	want := benchNamespaces * benchPerNS
	cluster.Eventually(b, 5*time.Minute, func() (bool, error) {
		filled := 0
		err := eachBenchSecret(func(s *corev1.Secret) {
			if len(s.Data[corev1.ServiceAccountTokenKey]) > 0 {
				filled++
			}
		})
		return filled == want, fmt.Errorf("%d of %d filled (%v)", filled, want, err)
	})
}

func eachBenchSecret(fn func(*corev1.Secret)) error {
	lo := metav1.ListOptions{LabelSelector: "bench=migrate", Limit: 500,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	for {
		l, err := cluster.Client.CoreV1().Secrets("").List(ctx, lo)
		if err != nil {
			return err
		}
		for i := range l.Items {
			fn(&l.Items[i])
		}
		if l.Continue == "" {
			return nil
		}
		lo.Continue = l.Continue
	}
}

func checkInvalid(b *testing.B, want bool) {
	b.Helper()
	n := 0
	if err := eachBenchSecret(func(s *corev1.Secret) {
		if _, has := s.Labels[legacy.LabelInvalidSince]; has == want {
			n++
		}
	}); err != nil {
		b.Fatal(err)
	}
	if n != benchNamespaces*benchPerNS {
		b.Fatalf("%d Secrets with invalid-since=%v, want %d", n, want, benchNamespaces*benchPerNS)
	}
}

// timeBinary runs the plugin and returns its wall time and peak RSS (KiB).
func timeBinary(b *testing.B, args ...string) (time.Duration, int64) {
	b.Helper()
	p, err := framework.RunProcess("", pluginBinary(b), append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	if err != nil {
		b.Fatal(err)
	}
	return p.Took, p.PeakRSS / 1024
}

// buildCeiling builds the minimal client-go program (./ceiling).
func buildCeiling(b *testing.B) string {
	out := filepath.Join(b.TempDir(), "ceiling")
	c := exec.Command("go", "build", "-o", out, "./ceiling")
	if msg, err := c.CombinedOutput(); err != nil {
		b.Fatalf("build ceiling: %v\n%s", err, msg)
	}
	return out
}

func timeCeiling(b *testing.B, prog, mode string) time.Duration {
	b.Helper()
	start := time.Now()
	c := exec.Command(prog, "--kubeconfig", cluster.Kubeconfig, "--mode", mode, "-l", "bench=migrate", "--workers", fmt.Sprint(benchWorkers))
	if out, err := c.CombinedOutput(); err != nil {
		b.Fatalf("ceiling %s: %v\n%s", mode, err, out)
	}
	return time.Since(start)
}

// shellLoop times what the docs lead a user to write, over the sample:
//
//	for s in $(kubectl get secrets ...); do
//	  kubectl get secret $s -o yaml > backup/$s.yaml
//	  kubectl label secret $s kubernetes.io/legacy-token-invalid-since=DATE
//	done
//
// and the same loop removing the label.
func shellLoop(b *testing.B, kubectl, dir string) (apply, restore time.Duration) {
	names := make([]string, 0, benchShellSample)
	if err := eachBenchSecret(func(s *corev1.Secret) {
		if len(names) < benchShellSample {
			names = append(names, s.Namespace+" "+s.Name)
		}
	}); err != nil {
		b.Fatal(err)
	}
	list := filepath.Join(dir, "list")
	if err := os.WriteFile(list, []byte(strings.Join(names, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	script := func(body string) time.Duration {
		sh := fmt.Sprintf(`set -e; export KUBECONFIG=%q; while read -r ns s; do %s; done < %q`, cluster.Kubeconfig, body, list)
		start := time.Now()
		if out, err := exec.Command("bash", "-c", sh).CombinedOutput(); err != nil {
			b.Fatalf("shell loop: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	apply = script(fmt.Sprintf(`%[1]s get secret -n "$ns" "$s" -o yaml > %[2]q/"$ns-$s.yaml"; %[1]s label secret -n "$ns" "$s" %[3]s=2026-11-23 >/dev/null`, kubectl, dir, legacy.LabelInvalidSince))
	restore = script(fmt.Sprintf(`%[1]s label secret -n "$ns" "$s" %[2]s- >/dev/null`, kubectl, legacy.LabelInvalidSince))
	return apply, restore
}
