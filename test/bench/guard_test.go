package bench

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// guardedSecret creates a legacy token Secret of sa, waits for
// kube-controller-manager to fill its token, and marks it invalid as
// `migrate --apply` does for clean-up (framework.CleanUpMarks): invalid
// since today, guarded, nothing used before. It returns the Secret.
func guardedSecret(b *testing.B, ns, sa, name string) *corev1.Secret {
	b.Helper()
	s := cluster.CreateLegacySecret(b, ns, sa, name, false)
	cluster.WriteMarks(b, ns, name, framework.CleanUpMarks())
	return s
}

// restoreLatency presents the Secret's token once with a plain client (not
// the plugin: the guard must act with nothing of ours in the request) and
// returns the time from sending that rejected request to the Secret seen
// without its invalid-since label, polled every 2 ms.
func restoreLatency(b *testing.B, s *corev1.Secret) time.Duration {
	b.Helper()
	client := cluster.TokenClient(b, s, "")
	start := time.Now()
	if code := framework.Present(b, client); code != http.StatusUnauthorized {
		b.Fatalf("the invalidated token got HTTP %d, want 401", code)
	}
	for {
		cur := cluster.GetSecret(b, s.Namespace, s.Name)
		if _, invalid := cur.Labels[legacy.LabelInvalidSince]; !invalid {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			b.Fatalf("%s/%s not restored within 30 s of its rejected use", s.Namespace, s.Name)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkGuardRestore: the time from a rejected request with an
// invalidated token to its Secret restored, by each guard: the admission
// policy (inside kube-apiserver's own last-used write) and `guard watch`
// (a process beside it). Five fresh Secrets a side per run (a token
// presented twice on one day writes last-used once).
func BenchmarkGuardRestore(b *testing.B) {
	plugin, _ := binaries(b)
	ctx := context.Background()
	gc, err := guard.NewCluster(cluster.RESTConfig)
	if err != nil {
		b.Fatal(err)
	}
	const perSide = 5
	for i := 0; i < b.N; i++ {
		ns := cluster.CreateNamespace(b, "guard-bench")
		cluster.CreateServiceAccount(b, ns, "app")
		secrets := make([]*corev1.Secret, 2*perSide)
		for j := range secrets {
			secrets[j] = guardedSecret(b, ns, "app", fmt.Sprintf("app-token-%d", j))
		}

		var policy, watch []time.Duration
		if _, err := guard.Install(ctx, gc, guard.InstallOptions{Prove: guard.ProveOptions{Wait: 30 * time.Second}}); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < perSide; j++ {
			policy = append(policy, restoreLatency(b, secrets[j]))
		}
		if _, err := guard.Uninstall(ctx, gc, guard.UninstallOptions{}); err != nil {
			b.Fatal(err)
		}
		// Without the policy (kube-apiserver drops a deleted policy from
		// its admission within a second or two), the watch restores.
		cmd := exec.Command(plugin, "--kubeconfig", cluster.Kubeconfig, "guard", "watch", "-n", ns, "--for", "2m")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = cmd.Wait() }()
		time.Sleep(3 * time.Second) // listed and watching
		for j := perSide; j < 2*perSide; j++ {
			watch = append(watch, restoreLatency(b, secrets[j]))
		}
		_ = cmd.Process.Kill()
		wg.Wait()
		b.ReportMetric(float64(medianDuration(policy).Milliseconds()), "ours-policy-ms")
		b.ReportMetric(float64(medianDuration(watch).Milliseconds()), "alt-policy-ms")
		b.ReportMetric(float64(slices.Max(watch).Milliseconds()), "ours-watch-ms")
		b.ReportMetric(1000, "alt-watch-ms")
	}
}

func medianDuration(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkGuardPolicyCost: 2,000 updates of guarded Secrets (an
// administrator's annotation, which the policy's objectSelector lets
// through to its match conditions, the most it ever evaluates without
// restoring) with the policy installed and without, back to back,
// alternating which goes first.
func BenchmarkGuardPolicyCost(b *testing.B) {
	ctx := context.Background()
	gc, err := guard.NewCluster(cluster.RESTConfig)
	if err != nil {
		b.Fatal(err)
	}
	ns := cluster.CreateNamespace(b, "guard-cost")
	cluster.CreateServiceAccount(b, ns, "app")
	const secrets, updates, workers = 200, 2000, 8
	for j := 0; j < secrets; j++ {
		name := fmt.Sprintf("s-%d", j)
		if _, err := cluster.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		cluster.WriteMarks(b, ns, name, framework.CleanUpMarks())
	}
	round := 0
	run := func() time.Duration {
		round++
		work := make(chan int)
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range work {
					patch := fmt.Sprintf(`{"metadata":{"annotations":{"example.com/touched":"%d-%d"}}}`, round, k)
					_, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, fmt.Sprintf("s-%d", k%secrets), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
					if err != nil && !apierrors.IsConflict(err) {
						b.Error(err)
					}
				}
			}()
		}
		for k := 0; k < updates; k++ {
			work <- k
		}
		close(work)
		wg.Wait()
		return time.Since(start)
	}
	install := func() {
		if _, err := guard.Install(ctx, gc, guard.InstallOptions{Prove: guard.ProveOptions{Wait: 30 * time.Second}}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(2 * time.Second) // in kube-apiserver's admission
	}
	uninstall := func() {
		if _, err := guard.Uninstall(ctx, gc, guard.UninstallOptions{}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(2 * time.Second)
	}
	for i := 0; i < b.N; i++ {
		var with, without time.Duration
		if i%2 == 0 {
			install()
			with = run()
			uninstall()
			without = run()
		} else {
			without = run()
			install()
			with = run()
			uninstall()
		}
		b.ReportMetric(with.Seconds(), "ours-s")
		b.ReportMetric(without.Seconds(), "alt-s")
	}
}
