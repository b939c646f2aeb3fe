package scale

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The data set: perNS legacy token Secrets in each namespace; the cluster
// grows through the tiers (cumulative namespace counts), each tier's
// Secrets labelled tierLabel=NAME so the apply can select the first two
// (20,000 Secrets) with -l.
const (
	perNS      = 10
	helmPerNS  = 2
	helmBytes  = 8 << 10 // a small Helm release; real ones are 10-100 KB
	tierLabel  = "scale-tier"
	setupConns = 48
	// The apply and restore rows: the first two tiers' Secrets.
	applySelector = tierLabel + " in (2k,20k)"
	applyWorkers  = 8
	// The limit for the audit's peak RSS at 100,000 Secrets.
	rssLimitMB = 150
)

type tier struct {
	name       string
	namespaces int // cumulative
}

// tiers are divided by SCALE_DIVIDE (a quick look at the benchmark's
// own code on a small cluster: SCALE_DIVIDE=100 makes 20, 200 and 1,000
// Secrets; the row titles then do not hold).
func tiers(b *testing.B) []tier {
	t := []tier{{"2k", 200}, {"20k", 2000}, {"100k", 10000}}
	if s := os.Getenv("SCALE_DIVIDE"); s != "" {
		d, err := strconv.Atoi(s)
		if err != nil || d < 1 {
			b.Fatalf("SCALE_DIVIDE=%q", s)
		}
		for i := range t {
			t[i].namespaces = max(1, t[i].namespaces/d)
		}
	}
	return t
}

// pagesOnly (SCALE_PAGES_ONLY=1) only sets the cluster up and times the
// Secret LIST at each page size: to compare releases (KUBE_VERSION=1.34).
var pagesOnly = os.Getenv("SCALE_PAGES_ONLY") != ""

// tierResult is one tier's audit, measured on the whole cluster.
type tierResult struct {
	secrets              int
	setup                time.Duration
	ours, ceiling, getJQ time.Duration
	oursRSS, ceilingRSS  int64
}

// BenchmarkScale grows the cluster tier by tier and measures the audit at
// each (`migrate -A -o json`, the ceiling listing the same metadata pages,
// `kubectl get secrets -A -o json | jq`), then at 100,000: the Secret
// LIST at four page sizes, and the apply and restore of the first 20,000
// Secrets against the ceiling doing the same backup writes and patches.
// Run it once: -benchtime 1x -count 1 (`make bench-scale`).
func BenchmarkScale(b *testing.B) {
	plugin := cluster.PluginBinary(b)
	ceiling := framework.BuildCeiling(b)
	kubectl, err := framework.ControlPlaneBinary("kubectl")
	if err != nil {
		b.Fatal(err)
	}
	ts := tiers(b)
	var res []tierResult
	var pages map[int64]framework.Process
	var apply, restore, cgApply, cgRestore framework.Process
	for b.Loop() {
		if len(res) > 0 {
			b.Fatal("BenchmarkScale grows one cluster: run it with -benchtime 1x -count 1")
		}
		from := 0
		for _, t := range ts {
			setup := grow(b, from, t)
			from = t.namespaces
			if pagesOnly {
				res = append(res, tierResult{secrets: t.namespaces * perNS, setup: setup})
				continue
			}
			r := measureAudit(b, plugin, ceiling, kubectl, t.namespaces*perNS, t.namespaces)
			r.setup = setup
			res = append(res, r)
			b.Logf("tier %s: %d Secrets; set up %s (namespaces, then default ServiceAccounts); audit %s (%.1f MB), ceiling %s (%.1f MB), kubectl|jq %s",
				t.name, r.secrets, r.setup.Round(time.Second), r.ours.Round(time.Millisecond), mb(r.oursRSS),
				r.ceiling.Round(time.Millisecond), mb(r.ceilingRSS), r.getJQ.Round(time.Millisecond))
		}
		pages = pageSizes(b, ceiling, res[len(res)-1].secrets)
		if !pagesOnly {
			want := ts[1].namespaces * perNS
			apply, restore, cgApply, cgRestore = applyAndRestore(b, plugin, ceiling, want)
		}
	}
	names := []string{"2k", "20k", "100k"}
	for i, r := range res {
		b.ReportMetric(r.setup.Seconds(), "setup"+names[i]+"-s")
	}
	for _, l := range pageLimits {
		b.ReportMetric(pages[l].Took.Seconds(), fmt.Sprintf("list-limit%d-s", l))
	}
	if pagesOnly {
		return
	}
	pair := func(metric string, ours, alt float64) {
		b.ReportMetric(ours, "ours-"+metric)
		b.ReportMetric(alt, "alt-"+metric)
	}
	for i, r := range res {
		n := names[i]
		pair("audit"+n+"-s", r.ours.Seconds(), r.ceiling.Seconds())
		pair("audit"+n+"-RSS-MB", mb(r.oursRSS), mb(r.ceilingRSS))
		pair("audit"+n+"-vs-jq-s", r.ours.Seconds(), r.getJQ.Seconds())
		// Time per 1,000 Secrets against the same at 2,000: above 1 the
		// audit gets cheaper per Secret as the cluster grows.
		pair("audit"+n+"-per-1k-s", r.ours.Seconds()/float64(r.secrets)*1000,
			res[0].ours.Seconds()/float64(res[0].secrets)*1000)
	}
	last := res[len(res)-1]
	pair("rss-100k-vs-20k-MB", mb(last.oursRSS), mb(res[1].oursRSS))
	pair("rss-100k-limit-MB", mb(last.oursRSS), rssLimitMB)
	pair("apply20k-s", apply.Took.Seconds(), cgApply.Took.Seconds())
	pair("apply20k-RSS-MB", mb(apply.PeakRSS), mb(cgApply.PeakRSS))
	pair("restore20k-s", restore.Took.Seconds(), cgRestore.Took.Seconds())
	pair("restore20k-RSS-MB", mb(restore.PeakRSS), mb(cgRestore.PeakRSS))
}

func mb(v int64) float64 { return float64(v) / (1 << 20) }

// median is the middle of ds (the mean of the two middle ones when even).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// auditRounds is how many times measureAudit runs ours, ceiling,
// ceiling, ours: on a shared 2-core machine one audit of 100,000 Secrets
// took from 5.7 s to 7.9 s in four runs in a row, so one pair of runs
// cannot tell a ratio of 0.8 from 1.
const auditRounds = 3

// measureAudit runs ours and the ceiling auditRounds times in the order
// ours, ceiling, ceiling, ours (load that drifts weighs on both alike),
// and kubectl|jq once; times are medians, RSS the largest run.
func measureAudit(b *testing.B, plugin, ceiling, kubectl string, want, namespaces int) tierResult {
	r := tierResult{secrets: want}
	var ours, cg []time.Duration
	for range auditRounds {
		for _, side := range []string{"ours", "ceiling", "ceiling", "ours"} {
			if side == "ours" {
				o := framework.MeasureProcess(b, plugin, "--kubeconfig", cluster.Kubeconfig, "migrate", "-A", "-o", "json")
				checkAudit(b, o.Stdout, want, namespaces)
				ours = append(ours, o.Took)
				r.oursRSS = max(r.oursRSS, o.PeakRSS)
				continue
			}
			c := framework.MeasureProcess(b, ceiling, "--kubeconfig", cluster.Kubeconfig, "--mode", "audit", "--metadata")
			if got := strings.TrimSpace(c.Stdout); got != fmt.Sprint(want) {
				b.Fatalf("ceiling saw %s Secrets, want %d", got, want)
			}
			cg = append(cg, c.Took)
			r.ceilingRSS = max(r.ceilingRSS, c.PeakRSS)
		}
	}
	r.ours, r.ceiling = median(ours), median(cg)
	// The user's view: the same Secrets (the type field selector, as the
	// audit's), the facts a verdict starts from, one line per Secret.
	script := fmt.Sprintf(`set -o pipefail; %q --kubeconfig %q get secrets -A --field-selector type=%s -o json | jq -c %q | wc -l`,
		kubectl, cluster.Kubeconfig, corev1.SecretTypeServiceAccountToken,
		`.items[] | {namespace: .metadata.namespace, name: .metadata.name, serviceAccount: .metadata.annotations["kubernetes.io/service-account.name"], created: .metadata.creationTimestamp, lastUsed: .metadata.labels["kubernetes.io/legacy-token-last-used"], invalidSince: .metadata.labels["kubernetes.io/legacy-token-invalid-since"]}`)
	g, err := framework.RunProcess("", "bash", "-c", script)
	if err != nil {
		b.Fatal(err)
	}
	if got := strings.TrimSpace(g.Stdout); got != fmt.Sprint(want) {
		b.Fatalf("kubectl get | jq printed %s Secrets, want %d", got, want)
	}
	r.getJQ = g.Took
	return r
}

// checkAudit makes sure the audit judged every Secret and found readers
// in every namespace (the Deployment's and the CronJob's Secrets).
func checkAudit(b *testing.B, out string, want, namespaces int) {
	b.Helper()
	var l struct {
		Items []struct {
			Readers []struct{ Kind string } `json:"readers"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		b.Fatalf("audit output: %v", err)
	}
	read := 0
	for _, it := range l.Items {
		if len(it.Readers) > 0 {
			read++
		}
	}
	if len(l.Items) != want || read != 2*namespaces {
		b.Fatalf("audit judged %d Secrets, %d with readers, want %d and %d", len(l.Items), read, want, 2*namespaces)
	}
}

// pageLimits are the page sizes the Secret LIST is timed at.
var pageLimits = []int64{250, 500, 1000, 2000}

// pageSizes times the audit's Secret LIST alone (metadata, type field
// selector) at each page size, three rounds in turn; each size's median.
func pageSizes(b *testing.B, ceiling string, want int) map[int64]framework.Process {
	runs := map[int64][]framework.Process{}
	for round := 0; round < 3; round++ {
		for _, l := range pageLimits {
			p := framework.MeasureProcess(b, ceiling, "--kubeconfig", cluster.Kubeconfig, "--mode", "list-secrets", "--metadata", "--limit", fmt.Sprint(l))
			if got := strings.TrimSpace(p.Stdout); got != fmt.Sprint(want) {
				b.Fatalf("list-secrets --limit %d saw %s Secrets, want %d", l, got, want)
			}
			runs[l] = append(runs[l], p)
		}
	}
	// One log line: go test keeps only the first lines of a benchmark's log.
	var line []string
	out := map[int64]framework.Process{}
	for _, l := range pageLimits {
		ps := runs[l]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Took < ps[j].Took })
		out[l] = ps[len(ps)/2]
		var took []string
		for _, p := range runs[l] {
			took = append(took, p.Took.Round(time.Millisecond).String())
		}
		line = append(line, fmt.Sprintf("limit %d: %s (median %s, %.1f MB)", l, strings.Join(took, " "), out[l].Took.Round(time.Millisecond), mb(out[l].PeakRSS)))
	}
	b.Logf("Secret LIST (metadata) of %d Secrets: %s", want, strings.Join(line, "; "))
	return out
}

// applyAndRestore invalidates the first two tiers' Secrets with a backup
// and restores them, checking the labels after each, in the order ours,
// ceiling, ceiling, ours: the first apply after the audits ran slower on
// either side (etcd and kube-apiserver still busy with the LISTs of
// 100,000 Secrets), and one pair of runs cannot tell 0.8 from 1. Times
// are means of two, RSS the larger.
func applyAndRestore(b *testing.B, plugin, ceiling string, want int) (apply, restore, cgApply, cgRestore framework.Process) {
	throttle := []string{"--qps", "1000", "--burst", "1000", "--concurrency", fmt.Sprint(applyWorkers)}
	add := func(sum *framework.Process, p framework.Process) {
		sum.Took += p.Took / 2
		sum.PeakRSS = max(sum.PeakRSS, p.PeakRSS)
	}
	for i, side := range []string{"ours", "ceiling", "ceiling", "ours"} {
		if side == "ours" {
			dir := filepath.Join(b.TempDir(), fmt.Sprintf("backup-%d", i))
			a := framework.MeasureProcess(b, plugin, append([]string{"--kubeconfig", cluster.Kubeconfig, "migrate", "-A", "-l", applySelector,
				"--apply", "--yes", "--mode", "invalidate", "--include-unknown", "--include-mounted", "--backup-dir", dir}, throttle...)...)
			checkInvalid(b, want)
			r := framework.MeasureProcess(b, plugin, append([]string{"--kubeconfig", cluster.Kubeconfig, "restore", "--from", dir}, throttle...)...)
			checkInvalid(b, 0)
			b.Logf("apply of %d Secrets: %s (%.1f MB); restore: %s (%.1f MB)", want, a.Took.Round(time.Millisecond), mb(a.PeakRSS), r.Took.Round(time.Millisecond), mb(r.PeakRSS))
			add(&apply, a)
			add(&restore, r)
			continue
		}
		cdir := filepath.Join(b.TempDir(), fmt.Sprintf("ceiling-backup-%d", i))
		args := []string{"--kubeconfig", cluster.Kubeconfig, "-l", applySelector, "--workers", fmt.Sprint(applyWorkers), "--backup", cdir}
		a := framework.MeasureProcess(b, ceiling, append([]string{"--mode", "invalidate"}, args...)...)
		checkInvalid(b, want)
		r := framework.MeasureProcess(b, ceiling, append([]string{"--mode", "restore"}, args...)...)
		checkInvalid(b, 0)
		b.Logf("ceiling apply: %s (%.1f MB); restore: %s (%.1f MB)", a.Took.Round(time.Millisecond), mb(a.PeakRSS), r.Took.Round(time.Millisecond), mb(r.PeakRSS))
		add(&cgApply, a)
		add(&cgRestore, r)
	}
	return apply, restore, cgApply, cgRestore
}

// checkInvalid counts the Secrets of applySelector that carry the
// invalid-since label.
func checkInvalid(b *testing.B, want int) {
	b.Helper()
	md, err := metadata.NewForConfig(cluster.RESTConfig)
	if err != nil {
		b.Fatal(err)
	}
	lo := metav1.ListOptions{Limit: 500, LabelSelector: applySelector + "," + legacy.LabelInvalidSince,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	n := 0
	for {
		l, err := md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).List(ctx, lo)
		if err != nil {
			b.Fatal(err)
		}
		n += len(l.Items)
		if lo.Continue = l.Continue; lo.Continue == "" {
			break
		}
	}
	if n != want {
		b.Fatalf("%d Secrets of %q are invalid, want %d", n, applySelector, want)
	}
}

// grow creates the namespaces [from, t.namespaces) with setupConns
// namespaces at a time, then waits for the serviceaccount controller's
// default ServiceAccount in each (its writes would otherwise fall into
// the measurements).
func grow(b *testing.B, from int, t tier) time.Duration {
	start := time.Now()
	cfg := rest.CopyConfig(cluster.RESTConfig)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side limit
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := os.ReadFile(cluster.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	next := atomic.Int64{}
	next.Store(int64(from))
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < setupConns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= t.namespaces || firstErr.Load() != nil {
					return
				}
				if err := createNamespace(cs, fmt.Sprintf("scale-%05d", i), t.name, ca); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	md, err := metadata.NewForConfig(cluster.RESTConfig)
	if err != nil {
		b.Fatal(err)
	}
	cluster.Eventually(b, 10*time.Minute, func() (bool, error) {
		lo := metav1.ListOptions{Limit: 5000, FieldSelector: "metadata.name=default"}
		n := 0
		for {
			l, err := md.Resource(corev1.SchemeGroupVersion.WithResource("serviceaccounts")).List(ctx, lo)
			if err != nil {
				return false, err
			}
			for _, it := range l.Items {
				if strings.HasPrefix(it.Namespace, "scale-") {
					n++
				}
			}
			if lo.Continue = l.Continue; lo.Continue == "" {
				break
			}
		}
		if n < t.namespaces {
			time.Sleep(2 * time.Second)
		}
		return n >= t.namespaces, fmt.Errorf("%d of %d default ServiceAccounts", n, t.namespaces)
	})
	took := time.Since(start)
	// The token controller must have left the filled Secrets alone: no
	// write of kube-controller-manager in their managed fields.
	for _, ns := range []string{fmt.Sprintf("scale-%05d", from), fmt.Sprintf("scale-%05d", t.namespaces-1)} {
		s, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "app-token-0", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range s.ManagedFields {
			if strings.Contains(f.Manager, "controller-manager") {
				b.Fatalf("secret %s/app-token-0 was changed by %s (%s): the token controller signed it", ns, f.Manager, f.Operation)
			}
		}
	}
	if pagesOnly {
		b.Logf("tier %s: namespaces %d..%d created in %s, default ServiceAccounts after %s", t.name, from, t.namespaces-1, created.Round(time.Second), took.Round(time.Second))
	}
	return took
}

var (
	helmOnce    sync.Once
	helmRelease []byte
	fakeToken   []byte
)

// createNamespace creates one namespace's objects: a ServiceAccount
// listing its perNS legacy token Secrets, the Secrets, helmPerNS Helm
// release Secrets, a Deployment with its ReplicaSet and a pod (Pending: no
// scheduler runs) reading app-token-0, a CronJob with a Job reading
// app-token-1.
//
// The legacy Secrets are created filled (token, ca.crt equal to
// kube-controller-manager's --root-ca-file, namespace), so the token
// controller signs nothing: its syncSecret calls generateTokenIfNeeded,
// which returns at once when secretUpdateNeeded finds the CA equal to its
// root CA, the namespace set and the token non-empty
// (k8s.io/kubernetes v1.37.2 pkg/controller/serviceaccount/tokens_controller.go,
// generateTokenIfNeeded and secretUpdateNeeded). The ServiceAccount exists
// first: a token Secret whose ServiceAccount is missing is deleted (syncSecret).
func createNamespace(cs kubernetes.Interface, ns, tierName string, ca []byte) error {
	helmOnce.Do(func() {
		raw := make([]byte, helmBytes*3/4)
		_, _ = rand.Read(raw)
		helmRelease = []byte(base64.StdEncoding.EncodeToString(raw))
		// A legacy token's size: header, claims, RS256 signature.
		sig := make([]byte, 256)
		_, _ = rand.Read(sig)
		claims := `{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"scale-00000","kubernetes.io/serviceaccount/secret.name":"app-token-0","kubernetes.io/serviceaccount/service-account.name":"app","kubernetes.io/serviceaccount/service-account.uid":"00000000-0000-0000-0000-000000000000","sub":"system:serviceaccount:scale-00000:app"}`
		fakeToken = []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"scale"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(claims)) + "." + base64.RawURLEncoding.EncodeToString(sig))
	})
	c := cs.CoreV1()
	if _, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{tierLabel: tierName}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	for j := 0; j < perNS; j++ {
		sa.Secrets = append(sa.Secrets, corev1.ObjectReference{Name: fmt.Sprintf("app-token-%d", j)})
	}
	sa, err := c.ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	for _, r := range sa.Secrets {
		if _, err := c.Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.Name, Labels: map[string]string{tierLabel: tierName},
				Annotations: map[string]string{corev1.ServiceAccountNameKey: sa.Name, corev1.ServiceAccountUIDKey: string(sa.UID)}},
			Type: corev1.SecretTypeServiceAccountToken,
			Data: map[string][]byte{corev1.ServiceAccountTokenKey: fakeToken, corev1.ServiceAccountRootCAKey: ca, corev1.ServiceAccountNamespaceKey: []byte(ns)},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for v := 1; v <= helmPerNS; v++ {
		status := "superseded"
		if v == helmPerNS {
			status = "deployed"
		}
		if _, err := c.Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sh.helm.release.v1.web.v%d", v),
				Labels: map[string]string{"owner": "helm", "name": "web", "status": status, "version": fmt.Sprint(v)}},
			Type: "helm.sh/release.v1",
			Data: map[string][]byte{"release": helmRelease},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	labels := map[string]string{"app": "web"}
	web := framework.VolumeReader("app-token-0")
	d, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: web}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	rsLabels := map[string]string{"app": "web", "pod-template-hash": "5d8f9c7b4"}
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f9c7b4", Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", d.Name, d.UID)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: framework.Ptr(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: web}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if _, err := c.Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f9c7b4-x7k2p", Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}},
		Spec: web,
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	nightly := framework.EnvReader("app-token-1")
	cj, err := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: nightly}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-29000000",
			OwnerReferences: []metav1.OwnerReference{controllerRef("batch/v1", "CronJob", cj.Name, cj.UID)}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: nightly}},
	}, metav1.CreateOptions{})
	return err
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
		Controller: framework.Ptr(true), BlockOwnerDeletion: framework.Ptr(true)}
}
