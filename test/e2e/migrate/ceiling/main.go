// Command ceiling is the minimal client-go program that the migrate
// benchmarks compare the plugin with: the same requests with the same
// concurrency, and nothing else (no backup, no journal, no judgement).
//
// --mode audit sends what `migrate` (pkg/legacy Scan and loadScope) sends:
// at once, the tracking ConfigMap GET, discovery's server groups, and
// paged LISTs (limit 500) of ServiceAccounts, pods and the seven workload
// kinds of the scope; then the pages of legacy token Secrets. It decodes
// every page as the plugin does and keeps nothing but a count, printed on
// stdout so the benchmark can check both sides saw the same Secrets.
// With --custom, audit also sends what migrate sends for workload APIs
// beyond the built-in kinds (pkg/legacy customReaders, pkg/workload
// Discover): discovery's preferred resources, the /openapi/v3 index and
// the schema of each given API's group-version, then paged LISTs of the
// given APIs, 4 at a time, each page decoded as the plugin decodes it
// (unstructured) and dropped: no pod spec is read from it.
// --mode invalidate and restore list the Secrets and patch each.
//
// For the scale benchmark (test/scale), flags make it send exactly what the
// plugin sends, beside the defaults the migrate benchmarks use:
// --metadata lists the Secrets for their metadata only, as the audit does
// (pkg/legacy/scan.go listSecretMetadata: the metadata client, Accept
// application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList, the
// type field selector, the label selector and the page size); --limit sets
// the page size of every LIST; --mode list-secrets sends only the paged
// Secret LIST (to choose the page size by measurement); --backup DIR makes
// invalidate write each page's Secrets to DIR first (one 0600 JSON file per
// Secret, one syncfs, a line per Secret in DIR/index appended and fsynced,
// as pkg/backup SaveBatch does) and only then patch them, and makes restore
// read that index and every file back before it patches.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
)

const label = "kubernetes.io/legacy-token-invalid-since"

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig")
	mode := flag.String("mode", "audit", "audit, invalidate or restore")
	selector := flag.String("l", "", "label selector (on the Secrets)")
	ns := flag.String("n", "", "namespace, all when empty")
	workers := flag.Int("workers", 8, "concurrent patches")
	custom := flag.String("custom", "", "comma-separated GROUP/VERSION/RESOURCE of workload APIs beyond the built-in kinds (audit)")
	meta := flag.Bool("metadata", false, "list the Secrets for their metadata only, as the plugin's audit does")
	limit := flag.Int64("limit", 500, "page size of every LIST")
	backupDir := flag.String("backup", "", "invalidate: back up each page of Secrets here before patching; restore: read this backup first")
	flag.Parse()
	pageSize = *limit
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	if *mode == "audit" {
		var apis []schema.GroupVersionResource
		for _, c := range strings.Split(*custom, ",") {
			if p := strings.Split(c, "/"); len(p) == 3 {
				apis = append(apis, schema.GroupVersionResource{Group: p[0], Version: p[1], Resource: p[2]})
			} else if c != "" {
				fail(fmt.Errorf("--custom %q: want GROUP/VERSION/RESOURCE", c))
			}
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			fail(err)
		}
		scope(ctx, cs, dyn, *ns, apis)
	}
	// The plugin lists Secrets in pages four times --chunk-size (pkg/legacy
	// Scan, secretPages).
	lo := metav1.ListOptions{Limit: 4 * *limit, LabelSelector: *selector,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	if *meta && (*mode == "audit" || *mode == "list-secrets") {
		md, err := metadata.NewForConfig(cfg)
		if err != nil {
			fail(err)
		}
		secrets := 0
		res := md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(*ns)
		for {
			l, err := res.List(ctx, lo)
			if err != nil {
				fail(err)
			}
			secrets += len(l.Items)
			if lo.Continue = l.Continue; lo.Continue == "" {
				break
			}
		}
		fmt.Println(secrets)
		return
	}
	var bk *backupFolder
	if *backupDir != "" {
		switch *mode {
		case "invalidate":
			bk = createBackup(*backupDir)
		case "restore":
			n := readBackup(*backupDir)
			fmt.Fprintf(os.Stderr, "read %d backed-up Secrets\n", n)
		}
	}
	secrets := 0
	jobs := make(chan corev1.Secret)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				var v any
				if *mode == "invalidate" {
					v = "2026-11-23"
				}
				patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
					"resourceVersion": s.ResourceVersion, "labels": map[string]any{label: v}}})
				if _, err := cs.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					fail(err)
				}
			}
		}()
	}
	for {
		l, err := cs.CoreV1().Secrets(*ns).List(ctx, lo)
		if err != nil {
			fail(err)
		}
		secrets += len(l.Items)
		if bk != nil {
			bk.save(l.Items)
		}
		if *mode != "audit" && *mode != "list-secrets" {
			for _, s := range l.Items {
				jobs <- s
			}
		}
		if lo.Continue = l.Continue; lo.Continue == "" {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if bk != nil {
		bk.close()
	}
	fmt.Println(secrets)
}

// pageSize is --limit, for the scope's LISTs too.
var pageSize int64 = 500

// backupFolder is the least a verified backup writes: a file per Secret,
// made durable together per page, then an index line per Secret, synced.
type backupFolder struct {
	dir   string
	index *os.File
}

func createBackup(dir string) *backupFolder {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "index"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fail(err)
	}
	return &backupFolder{dir: dir, index: f}
}

// save writes one page with 8 writers, syncs the file system once, then
// appends and syncs the index lines.
func (b *backupFolder) save(items []corev1.Secret) {
	files := make([]string, len(items))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := items[i]
				s.ManagedFields = nil
				data, err := json.Marshal(&s)
				if err != nil {
					fail(err)
				}
				d := filepath.Join(b.dir, s.Namespace)
				if err := os.MkdirAll(d, 0o700); err != nil {
					fail(err)
				}
				files[i] = filepath.Join(s.Namespace, s.Name+".json")
				if err := os.WriteFile(filepath.Join(b.dir, files[i]), data, 0o600); err != nil {
					fail(err)
				}
			}
		}()
	}
	for i := range items {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := syncfs(b.dir); err != nil {
		fail(err)
	}
	var lines strings.Builder
	for i, s := range items {
		fmt.Fprintf(&lines, "%s %s %s %s\n", s.Namespace, s.Name, s.ResourceVersion, files[i])
	}
	if _, err := b.index.WriteString(lines.String()); err != nil {
		fail(err)
	}
	if err := b.index.Sync(); err != nil {
		fail(err)
	}
}

func (b *backupFolder) close() {
	if err := b.index.Close(); err != nil {
		fail(err)
	}
}

// readBackup reads the index and decodes every file it names, as a
// restore must before it changes anything.
func readBackup(dir string) int {
	f, err := os.Open(filepath.Join(dir, "index"))
	if err != nil {
		fail(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			fail(fmt.Errorf("bad index line %q", sc.Text()))
		}
		data, err := os.ReadFile(filepath.Join(dir, fs[3]))
		if err != nil {
			fail(err)
		}
		var s corev1.Secret
		if err := json.Unmarshal(data, &s); err != nil {
			fail(err)
		}
		if s.Name != fs[1] {
			fail(fmt.Errorf("%s holds %s", fs[3], s.Name))
		}
		n++
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
	return n
}

// scope sends the requests of pkg/legacy loadScope, concurrently as it
// does, and waits for the last page of each.
func scope(ctx context.Context, cs *kubernetes.Clientset, dyn dynamic.Interface, ns string, apis []schema.GroupVersionResource) {
	lo := metav1.ListOptions{Limit: pageSize}
	core, apps, batch := cs.CoreV1(), cs.AppsV1(), cs.BatchV1()
	reads := []func() error{
		func() error {
			_, err := core.ConfigMaps("kube-system").Get(ctx, "kube-apiserver-legacy-service-account-token-tracking", metav1.GetOptions{})
			return err
		},
		func() error { _, err := cs.Discovery().ServerGroups(); return err },
		func() error { return pages(ctx, lo, core.ServiceAccounts(ns).List) },
		func() error { return pages(ctx, lo, core.Pods(ns).List) },
		func() error { return pages(ctx, lo, apps.Deployments(ns).List) },
		func() error { return pages(ctx, lo, apps.StatefulSets(ns).List) },
		func() error { return pages(ctx, lo, apps.DaemonSets(ns).List) },
		func() error { return pages(ctx, lo, apps.ReplicaSets(ns).List) },
		func() error { return pages(ctx, lo, core.ReplicationControllers(ns).List) },
		func() error { return pages(ctx, lo, batch.Jobs(ns).List) },
		func() error { return pages(ctx, lo, batch.CronJobs(ns).List) },
	}
	if len(apis) > 0 {
		reads = append(reads, func() error { return customAPIs(ctx, cs, dyn, ns, apis) })
	}
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, read := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = read()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fail(err)
		}
	}
}

// customAPIs sends the requests of pkg/legacy customReaders for apis.
func customAPIs(ctx context.Context, cs *kubernetes.Clientset, dyn dynamic.Interface, ns string, apis []schema.GroupVersionResource) error {
	if _, err := cs.Discovery().ServerPreferredResources(); err != nil {
		return err
	}
	paths, err := cs.Discovery().OpenAPIV3().Paths()
	if err != nil {
		return err
	}
	for _, gv := range gvsOf(apis) {
		p, ok := paths["apis/"+gv.Group+"/"+gv.Version]
		if !ok {
			return fmt.Errorf("%s not in /openapi/v3", gv)
		}
		if _, err := p.Schema("application/json"); err != nil {
			return err
		}
	}
	lo := metav1.ListOptions{Limit: pageSize}
	work := make(chan schema.GroupVersionResource)
	errs := make(chan error, len(apis))
	// As many at once as the plugin (pkg/legacy customWorkers).
	for range min(8, len(apis)) {
		go func() {
			for gvr := range work {
				errs <- pages(ctx, lo, func(ctx context.Context, lo metav1.ListOptions) (*unstructured.UnstructuredList, error) {
					return dyn.Resource(gvr).Namespace(ns).List(ctx, lo)
				})
			}
		}()
	}
	for _, gvr := range apis {
		work <- gvr
	}
	close(work)
	for range apis {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func gvsOf(apis []schema.GroupVersionResource) []schema.GroupVersion {
	var gvs []schema.GroupVersion
	seen := map[schema.GroupVersion]bool{}
	for _, a := range apis {
		if gv := a.GroupVersion(); !seen[gv] {
			seen[gv] = true
			gvs = append(gvs, gv)
		}
	}
	return gvs
}

// pages lists page after page and drops each.
func pages[L interface{ GetContinue() string }](ctx context.Context, lo metav1.ListOptions, list func(context.Context, metav1.ListOptions) (L, error)) error {
	for {
		l, err := list(ctx, lo)
		if err != nil {
			return err
		}
		if lo.Continue = l.GetContinue(); lo.Continue == "" {
			return nil
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
