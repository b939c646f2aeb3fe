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

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
	ceiling := framework.BuildCeiling(b)
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
	p, err := framework.RunProcess("", cluster.PluginBinary(b), append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	if err != nil {
		b.Fatal(err)
	}
	return p.Took, p.PeakRSS / 1024
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

// The large audit: 20,000 legacy Secrets in 2,000 namespaces, each
// namespace with one Deployment and one CronJob whose pod templates read
// one of its Secrets. No workload controller runs, so they stay objects:
// what the audit reads to find readers that run no pod now.
const (
	audit20kNamespaces = 2000
	audit20kPerNS      = 10
	audit20kLabel      = "bench=audit20k"
	// The limit for the audit's peak RSS at this size.
	audit20kRSSLimitMB = 150
)

// BenchmarkMigrateAudit20k times `migrate -A -o json` over the large data
// set, side by side in every iteration with (a) the ceiling program
// sending the same requests (./ceiling --mode audit) and (b) `kubectl get
// secrets -A -o json`, the user's own view of the same Secrets; peak RSS
// of each process is polled from /proc (framework.RunProcess). All three
// select the data set's Secrets with -l, so that other benchmarks' Secrets
// in the same cluster do not change the count; readers are still looked
// for in every namespace. Run it with -benchtime 1x.
func BenchmarkMigrateAudit20k(b *testing.B) {
	kubectl := kubectlPath(b)
	ceiling := framework.BuildCeiling(b)
	plugin := cluster.PluginBinary(b)
	audit20kOnce.Do(func() { audit20kErr = createAudit20k(b) })
	if audit20kErr != nil {
		b.Fatal(audit20kErr)
	}
	want := audit20kNamespaces * audit20kPerNS
	var ours, cg, get framework.Process
	var oursRSS, cgRSS, getRSS int64
	for b.Loop() {
		// Ours and the ceiling twice, in the order ours, ceiling,
		// ceiling, ours: load from other processes on the machine that
		// drifts during the iteration weighs on both sides alike.
		for _, side := range []string{"ours", "ceiling", "ceiling", "ours"} {
			if side == "ours" {
				o := framework.MeasureProcess(b, plugin, "--kubeconfig", cluster.Kubeconfig, "migrate", "-A", "-l", audit20kLabel, "-o", "json")
				checkAudit20k(b, o.Stdout, want)
				ours.Took += o.Took / 2
				oursRSS = max(oursRSS, o.PeakRSS)
				continue
			}
			c := framework.MeasureProcess(b, ceiling, "--kubeconfig", cluster.Kubeconfig, "--mode", "audit", "-l", audit20kLabel)
			if got := strings.TrimSpace(c.Stdout); got != fmt.Sprint(want) {
				b.Fatalf("ceiling saw %s Secrets, want %d", got, want)
			}
			cg.Took += c.Took / 2
			cgRSS = max(cgRSS, c.PeakRSS)
		}
		g := framework.MeasureProcess(b, kubectl, "--kubeconfig", cluster.Kubeconfig, "get", "secrets", "-A", "-l", audit20kLabel, "-o", "json")
		if n := strings.Count(g.Stdout, `"kind": "Secret"`); n != want {
			b.Fatalf("kubectl get printed %d Secrets, want %d", n, want)
		}
		get.Took += g.Took
		getRSS = max(getRSS, g.PeakRSS)
	}
	n := float64(b.N)
	mb := func(v int64) float64 { return float64(v) / (1 << 20) }
	pair := func(metric string, ours, alt float64) {
		b.ReportMetric(ours, "ours-"+metric)
		b.ReportMetric(alt, "alt-"+metric)
	}
	pair("audit20k-s", ours.Took.Seconds()/n, cg.Took.Seconds()/n)
	pair("audit20k-peak-RSS-MB", mb(oursRSS), audit20kRSSLimitMB)
	pair("audit20k-vs-ceiling-RSS-MB", mb(oursRSS), mb(cgRSS))
	pair("audit20k-vs-get-s", ours.Took.Seconds()/n, get.Took.Seconds()/n)
	pair("audit20k-vs-get-RSS-MB", mb(oursRSS), mb(getRSS))
}

var (
	audit20kOnce sync.Once
	audit20kErr  error
)

// checkAudit20k makes sure the audit judged every Secret and found the
// readers the data set has: one Deployment and one CronJob per namespace.
func checkAudit20k(b *testing.B, out string, want int) {
	b.Helper()
	var l struct {
		Items []struct {
			Readers []struct{ Kind string } `json:"readers"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		b.Fatalf("audit output: %v", err)
	}
	readers := 0
	for _, it := range l.Items {
		readers += len(it.Readers)
	}
	if len(l.Items) != want || readers != 2*audit20kNamespaces {
		b.Fatalf("audit judged %d Secrets with %d readers, want %d and %d", len(l.Items), readers, want, 2*audit20kNamespaces)
	}
}

// auditSet is a data set of the audit benchmarks: in each of namespaces
// namespaces (prefix-0000, ...), a ServiceAccount "app" listing perNS
// legacy token Secrets app-token-0, ... labelled label, a Deployment
// whose pod template mounts app-token-0 and a CronJob whose job template
// reads app-token-1 by env. No workload controller runs, so they stay
// objects: what the audit reads to find readers that run no pod now.
type auditSet struct {
	prefix            string
	namespaces, perNS int
	label             string // key=value
}

var audit20kSet = auditSet{prefix: "a20k", namespaces: audit20kNamespaces, perNS: audit20kPerNS, label: audit20kLabel}

func (s auditSet) namespace(i int) string { return fmt.Sprintf("%s-%04d", s.prefix, i) }

// benchClientConfig is the shared client's config with its rate limit
// (100 requests/s) raised for creating data sets of tens of thousands.
func benchClientConfig() *rest.Config {
	cfg := rest.CopyConfig(cluster.RESTConfig)
	cfg.QPS, cfg.Burst = 5000, 5000
	return cfg
}

// createAudit20k creates the data set once per process (-count N reuses
// it).
func createAudit20k(b *testing.B) error {
	return createAuditSet(b, audit20kSet)
}

// createAuditSet creates s, namespaces concurrently, and waits for the
// token controller to fill every Secret. Its namespaces are not deleted at
// the end of the benchmark (no namespace controller runs to empty them;
// the cluster goes at the end of the package).
func createAuditSet(b *testing.B, s auditSet) error {
	start := time.Now()
	cs, err := kubernetes.NewForConfig(benchClientConfig())
	if err != nil {
		return err
	}
	sem := make(chan struct{}, 32)
	errs := make(chan error, s.namespaces)
	var wg sync.WaitGroup
	for i := 0; i < s.namespaces; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- s.createNamespace(cs, s.namespace(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	created := time.Since(start)
	want := s.namespaces * s.perNS
	deadline := time.Now().Add(10 * time.Minute)
	for {
		filled := 0
		lo := metav1.ListOptions{LabelSelector: s.label, Limit: 500}
		for {
			l, err := cs.CoreV1().Secrets("").List(ctx, lo)
			if err != nil {
				return err
			}
			for i := range l.Items {
				if len(l.Items[i].Data[corev1.ServiceAccountTokenKey]) > 0 {
					filled++
				}
			}
			if lo.Continue = l.Continue; lo.Continue == "" {
				break
			}
		}
		if filled == want {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("token controller filled %d of %d Secrets within 10m", filled, want)
		}
		// A LIST of 20,000 Secrets loads the apiserver the controller
		// writes to (its 5 workers fill about 50 a second on 2 busy
		// cores): look seldom; a smaller set is filled sooner.
		time.Sleep(min(10*time.Second, time.Duration(want)*time.Millisecond/2))
	}
	b.Logf("data set: %d Secrets in %d namespaces created in %s, filled after %s", want, s.namespaces, created.Round(time.Second), time.Since(start).Round(time.Second))
	return nil
}

func (s auditSet) createNamespace(cs kubernetes.Interface, ns string) error {
	c := cs.CoreV1()
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	// The ServiceAccount exists before its Secrets (the token controller
	// deletes a token Secret whose ServiceAccount is missing) and lists
	// them, as for tokens generated before 1.24.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	for j := 0; j < s.perNS; j++ {
		sa.Secrets = append(sa.Secrets, corev1.ObjectReference{Name: fmt.Sprintf("app-token-%d", j)})
	}
	if _, err := c.ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return err
	}
	key, value, _ := strings.Cut(s.label, "=")
	for _, r := range sa.Secrets {
		if _, err := c.Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.Name, Labels: map[string]string{key: value},
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
			Type: corev1.SecretTypeServiceAccountToken,
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	labels := map[string]string{"app": "web"}
	web := framework.VolumeReader("app-token-0")
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: web}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	nightly := framework.EnvReader("app-token-1")
	_, err := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: nightly}}}},
	}, metav1.CreateOptions{})
	return err
}
