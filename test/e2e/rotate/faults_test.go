package rotate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

// TestRotateAndWaitThroughFaults runs rotate (patch, then wait) through a
// proxy that throttles, fails, resets, slows requests and cuts watches,
// while the simulated operator rolls out on the real apiserver.
func TestRotateAndWaitThroughFaults(t *testing.T) {
	openShift(t, func(o *kasoperator.Operator) {
		o.RaiseDelay = 500 * time.Millisecond
		o.StepDelay = 700 * time.Millisecond
	})
	p, err := faultproxy.Start(cluster, faultproxy.Config{
		Seed: 11, Rate429: 0.05, Rate500: 0.05, Rate503: 0.05, RateResetBefore: 0.03, RateResetAfter: 0.03,
		RateSlow: 0.05, RateWatchClose: 1, WatchMaxLife: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := run(p.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/faults", "--yes", "--backup", t.TempDir()+"/auth.yaml", "--timeout", "2m", "-o", "json")
	t.Logf("proxy: %s", p.Stats())
	r.Must(t, 0)
	var out rotateJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	if !out.Rollout.Done || out.Rollout.Revision != 8 || out.Rollout.NodesAtRevision != 3 {
		t.Fatalf("rollout: %+v", out.Rollout)
	}
	if got := currentIssuer(t); got != "https://oidc.example.com/faults" {
		t.Fatalf("spec.serviceAccountIssuer = %q", got)
	}
	// Every watch is cut within a second and the rollout takes longer, so
	// wait must have resumed at least once. (Other faults are random over a
	// dozen requests: usually one or two land; the log shows which.)
	if s := p.Stats(); s.WatchClosed == 0 {
		t.Fatalf("no watch was cut: %s", s)
	}
	// wait alone, through the same proxy, on the finished rollout.
	run(p.Kubeconfig, "wait", "--since-revision", "7", "--timeout", "1m").Must(t, 0)
}

// The issuer patch reaches the apiserver but its answer is lost, and every
// retry gets 503: rotate looks, finds the new issuer, and goes on to follow
// the rollout. When the look fails too, it says the change may have gone
// through instead of calling it a plain failure.
func TestRotateWhosePatchAnswerWasLost(t *testing.T) {
	for _, look := range []bool{true, false} {
		// A subtest each: its simulated operator stops when it ends, before
		// the next one starts.
		t.Run(fmt.Sprintf("look=%v", look), func(t *testing.T) { rotateWhosePatchAnswerWasLost(t, look) })
	}
}

func rotateWhosePatchAnswerWasLost(t *testing.T, look bool) {
	const authPath = "/apis/config.openshift.io/v1/authentications/cluster"
	openShift(t, nil)
	var patches atomic.Int64
	p, err := faultproxy.Start(cluster, faultproxy.Config{Logf: t.Logf, Script: func(r *http.Request) faultproxy.Fault {
		switch {
		case r.Method == http.MethodPatch && r.URL.Path == authPath:
			if patches.Add(1) == 1 {
				return faultproxy.ResetAfter
			}
			return faultproxy.Unavailable
		case !look && r.Method == http.MethodGet && r.URL.Path == authPath && patches.Load() > 0:
			return faultproxy.Unavailable
		}
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("https://oidc.example.com/lost-%v", look)
	r := run(p.Kubeconfig, "rotate", "issuer", issuer, "--yes", "--backup", t.TempDir()+"/auth.yaml", "--timeout", "1m")
	_ = p.Close()
	if got := currentIssuer(t); got != issuer {
		t.Fatalf("look=%v: the staged patch did not reach the apiserver: issuer %q", look, got)
	}
	if look {
		r.Must(t, 0, "kube-apiserver at revision 8 on 3/3 nodes")
	} else {
		r.Must(t, 1, "an earlier try may have gone through")
	}
}

// HyperShift: the new Secret's create and the HostedCluster patch both reach
// the apiserver and lose their answers. The repeats meet AlreadyExists and a
// resourceVersion conflict; rotate recognises both as its own work and ends
// with one new Secret, in use.
func TestHyperShiftRotationWhoseAnswersWereLost(t *testing.T) {
	ns, _, d := hostedCluster(t, "lost")
	ctx := context.Background()
	secretsPath := "/api/v1/namespaces/" + ns + "/secrets"
	hcPath := "/apis/hypershift.openshift.io/v1beta1/namespaces/" + ns + "/hostedclusters/prod"
	var creates, patches atomic.Int64
	p, err := faultproxy.Start(cluster, faultproxy.Config{Logf: t.Logf, Script: func(r *http.Request) faultproxy.Fault {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == secretsPath && creates.Add(1) == 1:
			return faultproxy.ResetAfter
		case r.Method == http.MethodPatch && r.URL.Path == hcPath && patches.Add(1) == 1:
			return faultproxy.ResetAfter
		}
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := run(p.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", ns, "--wait=false")
	_ = p.Close()
	r.Must(t, 0, "created Secret")
	if creates.Load() < 2 || patches.Load() < 2 {
		t.Fatalf("the staged faults were not met: %d creates, %d patches", creates.Load(), patches.Load())
	}
	kid := strings.TrimSpace(r.Stdout)
	hc, err := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Get(ctx, "prod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, hypershift.SigningKeyName(hc), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := jwt.ParsePEM(sec.Data["key"]); err != nil || ks.Keys[0].ID != kid {
		t.Fatalf("the HostedCluster's Secret %s does not hold kid %s (%v)", sec.Name, kid, err)
	}
	if n := secretCount(t, ns); n != 2 {
		t.Fatalf("%d Secrets in %s, want the old one and one new", n, ns)
	}
}

// When the patch fails for good and even the look fails, rotate says the
// new Secret is kept and how to finish; running the same command again then
// takes that Secret over and points the HostedCluster at it.
func TestHyperShiftRotationFinishesWhenRunAgain(t *testing.T) {
	ns, _, d := hostedCluster(t, "rerun")
	ctx := context.Background()
	hcPath := "/apis/hypershift.openshift.io/v1beta1/namespaces/" + ns + "/hostedclusters/prod"
	var patches atomic.Int64
	p, err := faultproxy.Start(cluster, faultproxy.Config{Logf: t.Logf, Script: func(r *http.Request) faultproxy.Fault {
		switch {
		case r.Method == http.MethodPatch && r.URL.Path == hcPath:
			patches.Add(1)
			return faultproxy.Unavailable
		case r.Method == http.MethodGet && r.URL.Path == hcPath && patches.Load() > 0:
			return faultproxy.Unavailable
		}
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := keys.Generate("rsa2048", false)
	keyFile := filepath.Join(t.TempDir(), "next.key")
	if err := os.WriteFile(keyFile, next.PrivatePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(p.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", ns, "--key", keyFile, "--wait=false")
	_ = p.Close()
	r.Must(t, 1, "an earlier try may have gone through", "is kept: run the same command again with --key FILE")
	if patches.Load() < 2 {
		t.Fatalf("the patch was tried %d times, want retries", patches.Load())
	}
	hc, _ := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Get(ctx, "prod", metav1.GetOptions{})
	if got := hypershift.SigningKeyName(hc); got != "sa-key" {
		t.Fatalf("the HostedCluster points at %q although no patch reached it", got)
	}

	run(cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", ns, "--key", keyFile, "--wait=false").Must(t, 0, "found (from an earlier run) Secret")
	hc, _ = d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Get(ctx, "prod", metav1.GetOptions{})
	sec, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, hypershift.SigningKeyName(hc), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Annotations[hypershift.KidAnnotation] != next.KeyID {
		t.Fatalf("the HostedCluster's Secret %s holds kid %s, want %s", sec.Name, sec.Annotations[hypershift.KidAnnotation], next.KeyID)
	}
	if n := secretCount(t, ns); n != 2 {
		t.Fatalf("%d Secrets in %s after the second run, want the old one and one new", n, ns)
	}
}

func secretCount(t *testing.T, ns string) int {
	t.Helper()
	l, err := cluster.Client.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

// Workload restarts: a restart patch whose answer was lost is sent again
// with the same restartedAt, so the Deployment rolls once and is reported
// restarted. A pod delete whose answer was lost is not repeated on the pod
// that replaced it under the same name (as a StatefulSet's would).
func TestRestartsWhoseAnswersWereLost(t *testing.T) {
	openShift(t, nil)
	ctx := context.Background()
	app := cluster.CreateNamespace(t, "lost-app")
	labels := map[string]string{"app": "x"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}}}}
	if _, err := cluster.Client.AppsV1().Deployments(app).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	depPath := "/apis/apps/v1/namespaces/" + app + "/deployments/web"
	var depPatches atomic.Int64
	p, err := faultproxy.Start(cluster, faultproxy.Config{Logf: t.Logf, Script: func(r *http.Request) faultproxy.Fault {
		if r.Method == http.MethodPatch && r.URL.Path == depPath && depPatches.Add(1) == 1 {
			return faultproxy.ResetAfter
		}
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := run(p.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/lost-restart", "--yes", "--backup", filepath.Join(t.TempDir(), "b.yaml"),
		"--restart", "workloads", "--restart-namespace", app, "--timeout", "1m")
	_ = p.Close()
	r.Must(t, 0, "restarted 1 workloads")
	d, err := cluster.Client.AppsV1().Deployments(app).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if depPatches.Load() != 2 || d.Generation != 2 || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Fatalf("after %d patches: generation %d, template annotations %v; want one restart (generation 2)", depPatches.Load(), d.Generation, d.Spec.Template.Annotations)
	}

	pods := cluster.CreateNamespace(t, "lost-pods")
	pod := func(name string) *corev1.Pod {
		p, err := cluster.Client.CoreV1().Pods(pods).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Error(err)
		}
		return p
	}
	first := pod("a")
	pod("b")
	var replacement atomic.Pointer[corev1.Pod]
	podPath := "/api/v1/namespaces/" + pods + "/pods/a"
	var deletes atomic.Int64
	p, err = faultproxy.Start(cluster, faultproxy.Config{Logf: t.Logf, Script: func(r *http.Request) faultproxy.Fault {
		if r.Method != http.MethodDelete || r.URL.Path != podPath {
			return faultproxy.NoFault
		}
		if deletes.Add(1) == 1 {
			return faultproxy.ResetAfter
		}
		// The retry finds a new pod "a", as a StatefulSet would have made.
		if replacement.Load() == nil {
			replacement.Store(pod("a"))
		}
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	r = run(p.Kubeconfig, "rotate", "issuer", "https://oidc.example.com/lost-pods", "--yes", "--backup", filepath.Join(t.TempDir(), "c.yaml"),
		"--restart", "pods", "--restart-namespace", pods, "--timeout", "1m")
	_ = p.Close()
	r.Must(t, 0, "deleted 2 pods in 1 namespaces")
	repl := replacement.Load()
	if repl == nil || repl.UID == first.UID {
		t.Fatalf("the staged retry did not happen (%d deletes of pod a)", deletes.Load())
	}
	got, err := cluster.Client.CoreV1().Pods(pods).Get(ctx, "a", metav1.GetOptions{})
	if err != nil || got.UID != repl.UID {
		t.Fatalf("the pod that replaced a was deleted by the repeat: %v", err)
	}
	if _, err := cluster.Client.CoreV1().Pods(pods).Get(ctx, "b", metav1.GetOptions{}); err == nil {
		// b had no fault: it is gone at once (never scheduled, no grace period).
		t.Fatal("pod b was not deleted")
	}
}
