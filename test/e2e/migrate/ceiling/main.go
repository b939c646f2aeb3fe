// Command ceiling is the minimal client-go program that BenchmarkMigrate
// compares the plugin with: the same LISTs and patches with the same
// concurrency, and nothing else (no backup, no journal, no audit).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const label = "kubernetes.io/legacy-token-invalid-since"

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig")
	mode := flag.String("mode", "audit", "audit, invalidate or restore")
	selector := flag.String("l", "", "label selector")
	workers := flag.Int("workers", 8, "concurrent patches")
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
		l, err := cs.CoreV1().Secrets("").List(ctx, lo)
		if err != nil {
			fail(err)
		}
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
	if *mode == "audit" {
		// What an audit must read besides the Secrets: who mounts them and
		// which ServiceAccounts list them.
		for _, list := range []func() error{
			func() error { _, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 500}); return err },
			func() error {
				_, err := cs.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{Limit: 500})
				return err
			},
		} {
			if err := list(); err != nil {
				fail(err)
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
