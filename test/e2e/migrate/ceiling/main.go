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
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
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
	flag.Parse()
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
	lo := metav1.ListOptions{Limit: 500, LabelSelector: *selector,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	for {
		l, err := cs.CoreV1().Secrets(*ns).List(ctx, lo)
		if err != nil {
			fail(err)
		}
		secrets += len(l.Items)
		if *mode != "audit" {
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
	fmt.Println(secrets)
}

// scope sends the requests of pkg/legacy loadScope, concurrently as it
// does, and waits for the last page of each.
func scope(ctx context.Context, cs *kubernetes.Clientset, dyn dynamic.Interface, ns string, apis []schema.GroupVersionResource) {
	lo := metav1.ListOptions{Limit: 500}
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
	lo := metav1.ListOptions{Limit: 500}
	work := make(chan schema.GroupVersionResource)
	errs := make(chan error, len(apis))
	for range min(4, len(apis)) {
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
