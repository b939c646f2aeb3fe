package migrate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// Issue #25: the audit on a cluster that also holds 20,000 custom objects
// of 5 kinds with pod specs, against the same audit without them.
//
// The Secrets and built-in workloads are those of BenchmarkMigrate's
// size: 2,000 legacy Secrets in 200 namespaces (auditSet: a Deployment
// and a CronJob per namespace read app-token-0 and app-token-1). Each
// namespace also holds customPerKind objects of each of the 5 kinds
// (customKinds), through the projects' own CRDs. Object 0 of each kind
// reads one legacy Secret of the namespace (app-token-2 to app-token-6,
// by volume or env): with them, 7 of the 10 Secrets of a namespace are
// read ("switch-workload"), without them 2. Objects 1 to 3 read a
// Secret that is no token (db-creds, by env), the others none (a
// ConfigMap by envFrom): references are few, objects many.
const (
	customNamespaces = 200
	customPerNS      = 10
	customPerKind    = 20 // 200 namespaces × 5 kinds × 20 = 20,000 objects
	customLabel      = "bench=auditcustom"
	customWorkers    = 32
)

var customSet = auditSet{prefix: "acus", namespaces: customNamespaces, perNS: customPerNS, label: customLabel}

// customKind is one of the benchmark's custom workload kinds.
type customKind struct {
	crd  string
	gvr  schema.GroupVersionResource
	kind string
	// secret is the legacy Secret object 0 of a namespace reads, via
	// "volume" or "env".
	secret, via string
	// spec wraps the pod spec of object i into the object's spec.
	spec func(name string, i int, pod map[string]any) map[string]any
}

func (k customKind) typeName() string { return workload.TypeName(k.gvr.Group, k.kind) }

var customKinds = []customKind{
	{crd: "rollouts.argoproj.io", gvr: rolloutsGVR, kind: "Rollout", secret: "app-token-2", via: "volume",
		spec: func(name string, _ int, pod map[string]any) map[string]any {
			return map[string]any{
				"replicas": int64(0),
				"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"strategy": map[string]any{"canary": map[string]any{}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": pod},
			}
		}},
	{crd: "scaledjobs.keda.sh", gvr: schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledjobs"},
		kind: "ScaledJob", secret: "app-token-3", via: "env",
		spec: func(_ string, _ int, pod map[string]any) map[string]any {
			pod["restartPolicy"] = "Never"
			return map[string]any{
				"jobTargetRef": map[string]any{"template": map[string]any{"spec": pod}},
				"triggers": []any{map[string]any{"type": "cron", "metadata": map[string]any{
					"timezone": "Etc/UTC", "start": "0 6 * * *", "end": "0 20 * * *", "desiredReplicas": "1"}}},
			}
		}},
	{crd: "tfjobs.kubeflow.org", gvr: schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1", Resource: "tfjobs"},
		kind: "TFJob", secret: "app-token-4", via: "volume",
		spec: func(_ string, _ int, pod map[string]any) map[string]any {
			return map[string]any{"tfReplicaSpecs": map[string]any{
				"Worker": map[string]any{"replicas": int64(1), "restartPolicy": "OnFailure", "template": map[string]any{"spec": pod}},
			}}
		}},
	{crd: "services.serving.knative.dev", gvr: schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"},
		kind: "Service", secret: "app-token-5", via: "env",
		spec: func(_ string, _ int, pod map[string]any) map[string]any {
			return map[string]any{"template": map[string]any{"spec": pod}}
		}},
	// Argo Workflows' spec is opaque to the schema: the audit searches
	// its data for pod specs by shape (a containers list). Object 0 runs
	// a containerSet, which has one; the others a plain container, as
	// most templates do, which that search does not take for a pod spec
	// (pkg/workload podSpecData wants a containers list): their db-creds
	// reads go unseen, as a legacy Secret read so would.
	{crd: "workflowtemplates.argoproj.io", gvr: schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflowtemplates"},
		kind: "WorkflowTemplate", secret: "app-token-6", via: "env",
		spec: func(_ string, i int, pod map[string]any) map[string]any {
			c := pod["containers"].([]any)
			tmpl := map[string]any{"name": "main", "container": c[0]}
			if i == 0 {
				tmpl = map[string]any{"name": "main", "containerSet": map[string]any{"containers": c}}
			}
			return map[string]any{"entrypoint": "main", "templates": []any{tmpl}}
		}},
}

// customPod is the pod spec of object i of kind k: object 0 reads k's
// legacy Secret, 1 to 3 the Secret db-creds by env, the others none.
func customPod(k customKind, i int) map[string]any {
	c := map[string]any{
		"name": "main", "image": "registry.k8s.io/pause:3.10",
		"args":      []any{"--port=8080", fmt.Sprintf("--shard=%d", i)},
		"ports":     []any{map[string]any{"containerPort": int64(8080), "name": "http"}},
		"resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}, "limits": map[string]any{"memory": "256Mi"}},
		"envFrom":   []any{map[string]any{"configMapRef": map[string]any{"name": "app-config"}}},
		"env":       []any{map[string]any{"name": "LOG_LEVEL", "value": "info"}},
	}
	pod := map[string]any{"containers": []any{c}}
	secretEnv := func(name, key string) {
		c["env"] = append(c["env"].([]any), map[string]any{"name": strings.ToUpper(key), "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": name, "key": key}}})
	}
	switch {
	case i == 0 && k.via == "volume":
		c["volumeMounts"] = []any{map[string]any{"name": "token", "mountPath": "/var/run/token", "readOnly": true}}
		pod["volumes"] = []any{map[string]any{"name": "token", "secret": map[string]any{"secretName": k.secret}}}
	case i == 0:
		secretEnv(k.secret, "token")
	case i <= 3:
		secretEnv("db-creds", "password")
	}
	return pod
}

var (
	customOnce sync.Once
	customErr  error
)

// BenchmarkMigrateAuditCustom times `migrate -A -o json` over customSet's
// 2,000 Secrets with the 20,000 custom objects present (ours) against the
// same audit without them (alt), both processes, in every iteration, on
// one cluster: same Secrets, same built-in workloads, same apiserver.
//
// "Without them" is the 5 CRDs set to served: false (spec.versions[].
// served): the objects stay in etcd, but the APIs leave discovery and
// /openapi/v3, which is what a cluster without those projects serves:
// the audit then reads no schema and lists no custom object, as on most
// clusters. Re-creating 20,000 objects per run, or a second cluster,
// would cost minutes or compare two apiservers. Each switch waits until
// the server's discovery says what the audit will see (workload.Discover,
// the audit's own call) and, when served again, lists every object once,
// so that the apiserver's cache of the re-created CRD storage is filled
// before the run that is timed (the apiserver rebuilds a CRD's storage
// and cache when it is served again: about 30 s on 2 busy cores, not
// timed). The ceiling program (./ceiling --custom) sends the same
// requests as ours with the custom objects and reads nothing from them:
// the part of ours that the requests alone cost. The order ours, ceiling,
// alt, alt, ceiling, ours spreads the load other processes put on the
// machine over every side.
//
// Peak RSS is polled from /proc (framework.RunProcess). That it is
// bounded by references, not objects, shows in the log line comparing it
// with the audit measured once during setup at 5,000 objects. Run it
// with -benchtime 1x.
func BenchmarkMigrateAuditCustom(b *testing.B) {
	plugin := cluster.PluginBinary(b)
	ceiling := framework.BuildCeiling(b)
	customOnce.Do(func() { customErr = createCustomSet(b, plugin) })
	if customErr != nil {
		b.Fatal(customErr)
	}
	dyn, err := dynamic.NewForConfig(benchClientConfig())
	if err != nil {
		b.Fatal(err)
	}
	var gvrs []string
	for _, k := range customKinds {
		gvrs = append(gvrs, k.gvr.Group+"/"+k.gvr.Version+"/"+k.gvr.Resource)
	}
	var ours, alt, cg, seen, warm time.Duration
	var oursRSS, altRSS, cgRSS int64
	for b.Loop() {
		for _, side := range []string{"ours", "ceiling", "alt", "alt", "ceiling", "ours"} {
			d, w, err := serveCustom(dyn, side != "alt")
			if err != nil {
				b.Fatal(err)
			}
			seen, warm = seen+d, warm+w
			if side == "ceiling" {
				c := framework.MeasureProcess(b, ceiling, "--kubeconfig", cluster.Kubeconfig, "--mode", "audit", "-l", customLabel, "--custom", strings.Join(gvrs, ","))
				if got := strings.TrimSpace(c.Stdout); got != fmt.Sprint(customNamespaces*customPerNS) {
					b.Fatalf("ceiling saw %s Secrets, want %d", got, customNamespaces*customPerNS)
				}
				cg += c.Took / 2
				cgRSS = max(cgRSS, c.PeakRSS)
				continue
			}
			p := framework.MeasureProcess(b, plugin, "--kubeconfig", cluster.Kubeconfig, "migrate", "-A", "-l", customLabel, "-o", "json")
			checkCustomAudit(b, p.Stdout, side == "ours")
			if side == "ours" {
				ours += p.Took / 2
				oursRSS = max(oursRSS, p.PeakRSS)
			} else {
				alt += p.Took / 2
				altRSS = max(altRSS, p.PeakRSS)
			}
		}
	}
	n := float64(b.N)
	mb := func(v int64) float64 { return float64(v) / (1 << 20) }
	per := func(d time.Duration) time.Duration { return (d / time.Duration(b.N)).Round(10 * time.Millisecond) }
	b.Logf("per iteration: ours %s, %.0f MB; without the custom objects %s, %.0f MB; ceiling with them %s, %.0f MB; not timed: the CRDs' switches waited %s for discovery, %s listing the objects again",
		per(ours), mb(oursRSS), per(alt), mb(altRSS), per(cg), mb(cgRSS), per(seen), per(warm))
	if small.rss > 0 {
		b.Logf("ours with %d custom objects (once, during setup): %s, %.0f MB; with %d: %s, %.0f MB",
			small.objects, small.took.Round(10*time.Millisecond), mb(small.rss), customNamespaces*len(customKinds)*customPerKind, per(ours), mb(oursRSS))
	}
	pair := func(metric string, ours, alt float64) {
		b.ReportMetric(ours, "ours-"+metric)
		b.ReportMetric(alt, "alt-"+metric)
	}
	pair("custom-s", ours.Seconds()/n, alt.Seconds()/n)
	pair("custom-peak-RSS-MB", mb(oursRSS), mb(altRSS))
	pair("custom-vs-ceiling-s", ours.Seconds()/n, cg.Seconds()/n)
	pair("custom-vs-ceiling-RSS-MB", mb(oursRSS), mb(cgRSS))
}

// small is ours measured once during setup, with customSmallPerKind
// objects of each kind per namespace: how peak RSS moves with objects.
var small struct {
	objects int
	took    time.Duration
	rss     int64
}

// customSmallPerKind objects of each kind per namespace are created
// first (5,000 in all) and audited once before the rest.
const customSmallPerKind = 5

// createCustomSet creates customSet, installs the 5 CRDs (kept: the
// cluster goes at the end of the package) and creates the custom
// objects, customWorkers at a time: customSmallPerKind of each kind per
// namespace, then an audit (small), then the rest.
func createCustomSet(b *testing.B, plugin string) error {
	if err := createAuditSet(b, customSet); err != nil {
		return err
	}
	for _, k := range customKinds {
		cluster.InstallCRD(b, k.crd, false)
	}
	dyn, err := dynamic.NewForConfig(benchClientConfig())
	if err != nil {
		return err
	}
	// A CRD left unserved by an earlier run of the package's benchmark
	// would refuse the objects.
	if _, _, err := serveCustom(dyn, true); err != nil {
		return err
	}
	start := time.Now()
	var audited time.Duration
	type job struct {
		k     customKind
		ns    string
		index int
		quiet chan struct{} // index -1: a barrier, answered when reached
	}
	jobs := make(chan job)
	errs := make(chan error, customWorkers)
	var wg sync.WaitGroup
	for range customWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for j := range jobs {
				if j.index < 0 {
					j.quiet <- struct{}{}
					continue
				}
				if first != nil {
					continue
				}
				name := fmt.Sprintf("%s-%02d", strings.ToLower(j.k.kind), j.index)
				u := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": j.k.gvr.GroupVersion().String(), "kind": j.k.kind,
					"metadata": map[string]any{"name": name},
					"spec":     j.k.spec(name, j.index, customPod(j.k, j.index)),
				}}
				if _, err := dyn.Resource(j.k.gvr).Namespace(j.ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
					first = fmt.Errorf("create %s %s/%s: %w", j.k.kind, j.ns, name, err)
				}
			}
			errs <- first
		}()
	}
	for _, r := range [][2]int{{0, customSmallPerKind}, {customSmallPerKind, customPerKind}} {
		if r[0] > 0 {
			// Every job of the first range is taken; wait for the
			// last creates to be answered.
			quiet := make(chan struct{})
			for range customWorkers {
				jobs <- job{index: -1, quiet: quiet}
			}
			for range customWorkers {
				<-quiet
			}
			a := time.Now()
			p, err := framework.RunProcess("", plugin, "--kubeconfig", cluster.Kubeconfig, "migrate", "-A", "-l", customLabel, "-o", "json")
			if err != nil {
				return err
			}
			checkCustomAudit(b, p.Stdout, true)
			small.objects, small.took, small.rss = customNamespaces*len(customKinds)*customSmallPerKind, p.Took, p.PeakRSS
			audited = time.Since(a)
		}
		for i := range customNamespaces {
			for _, k := range customKinds {
				for j := r[0]; j < r[1]; j++ {
					jobs <- job{k: k, ns: customSet.namespace(i), index: j}
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	b.Logf("custom objects: %d of %d kinds created in %s (%d workers; not counting the audit at %d, %s)", customNamespaces*len(customKinds)*customPerKind, len(customKinds),
		(time.Since(start) - audited).Round(time.Second), customWorkers, small.objects, audited.Round(100*time.Millisecond))
	return nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// serveCustom sets every version of the 5 CRDs served or not, and waits
// until the audit's own discovery (workload.Discover) finds all 5 APIs,
// or none of them; served again, it lists every object once (see
// BenchmarkMigrateAuditCustom). It returns how long each wait took.
func serveCustom(dyn dynamic.Interface, served bool) (seen, warm time.Duration, err error) {
	start := time.Now()
	changed := false
	for _, k := range customKinds {
		crd, err := dyn.Resource(crdGVR).Get(ctx, k.crd, metav1.GetOptions{})
		if err != nil {
			return 0, 0, err
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		same := true
		for _, v := range versions {
			v := v.(map[string]any)
			if v["served"] != served {
				v["served"], same = served, false
			}
		}
		if same {
			continue
		}
		changed = true
		if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
			return 0, 0, err
		}
		if _, err := dyn.Resource(crdGVR).Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
			return 0, 0, fmt.Errorf("%s served=%v: %w", k.crd, served, err)
		}
	}
	want := []string{}
	if served {
		for _, k := range customKinds {
			want = append(want, k.gvr.Resource+"."+k.gvr.Group)
		}
		sort.Strings(want)
	}
	var last string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		apis, err := workload.Discover(ctx, cluster.Client.Discovery())
		got := []string{}
		for _, a := range apis {
			got = append(got, a.Resource+"."+a.Group)
		}
		sort.Strings(got)
		if err == nil && slices.Equal(got, want) {
			break
		}
		last = fmt.Sprintf("APIs %v, want %v (%v)", got, want, err)
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("served=%v not seen within 2m: %s", served, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen = time.Since(start)
	if !served || !changed {
		return seen, 0, nil
	}
	for _, k := range customKinds {
		n := 0
		lo := metav1.ListOptions{Limit: 500}
		for {
			l, err := dyn.Resource(k.gvr).List(ctx, lo)
			if err != nil {
				return seen, 0, err
			}
			n += len(l.Items)
			if lo.Continue = l.GetContinue(); lo.Continue == "" {
				break
			}
		}
		if want := customNamespaces * customPerKind; n < want {
			return seen, 0, fmt.Errorf("%s: %d objects listed, want %d", k.gvr.Resource, n, want)
		}
	}
	return seen, time.Since(start) - seen, nil
}

// checkCustomAudit makes sure the audit judged every Secret and found the
// readers the data set has, with the custom objects (with) or without.
func checkCustomAudit(b *testing.B, out string, with bool) {
	b.Helper()
	var l struct {
		Items []struct {
			Verdict string
			Readers []struct{ Kind string } `json:"readers"`
		} `json:"items"`
		Summary struct {
			Basis struct {
				Warnings     []string
				WorkloadAPIs []string `json:"workloadAPIs"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		b.Fatalf("audit output: %v", err)
	}
	readers := map[string]int{}
	switchWorkload := 0
	for _, it := range l.Items {
		for _, r := range it.Readers {
			readers[r.Kind]++
		}
		if it.Verdict == legacy.VerdictSwitchWorkload {
			switchWorkload++
		}
	}
	want := map[string]int{"deployment": customNamespaces, "cronjob": customNamespaces}
	apis := 0
	if with {
		for _, k := range customKinds {
			want[k.typeName()] = customNamespaces
		}
		apis = len(customKinds)
	}
	read := 0
	for _, n := range want {
		read += n
	}
	if len(l.Items) != customNamespaces*customPerNS || !maps.Equal(readers, want) || switchWorkload != read ||
		len(l.Summary.Basis.WorkloadAPIs) != apis || len(l.Summary.Basis.Warnings) > 0 {
		b.Fatalf("audit (custom objects served: %v) judged %d Secrets, %d switch-workload, readers %v (want %d, %d, %v), workload APIs %v, warnings %v",
			with, len(l.Items), switchWorkload, readers, customNamespaces*customPerNS, read, want, l.Summary.Basis.WorkloadAPIs, l.Summary.Basis.Warnings)
	}
}
