// Package guard tests the guard inside kube-apiserver (guard install,
// status, uninstall: a MutatingAdmissionPolicy) against a real
// kube-apiserver, etcd and kube-controller-manager: legacy Secrets are
// filled by the real token controller, their tokens presented by a plain
// client with the plugin not running, and rejected, labelled and restored
// by the real apiserver alone.
package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

// trackedDays: legacy token use is tracked since that many days ago, as on
// a cluster upgraded to 1.28 long since, so that migrate may call an old
// Secret unused and the kube-controller-manager cleaner may act.
const trackedDays = 400

func TestMain(m *testing.M) {
	// JSON storage lets a test backdate a Secret through etcd, for migrate's
	// verdict and the cleaner's period.
	opts := framework.Options{JSONStorage: true, APIServerArgs: policyAPIArgs()}
	framework.Main(m, opts, func(c *framework.Cluster) {
		cluster = c
		if err := c.SetTrackingSinceNow(daysAgo(trackedDays)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			_ = c.Stop()
			os.Exit(1)
		}
	})
}

// policyAPIArgs are kube-apiserver's flags that serve MutatingAdmissionPolicy
// on the release the suite runs on: none from 1.36 (v1, on by default);
// on 1.34 and 1.35 the feature gate and v1beta1 together (the gate alone
// stops kube-apiserver 1.34.4 at start-up).
func policyAPIArgs() []string {
	var minor int
	if _, err := fmt.Sscanf(framework.KubeVersion(), "1.%d", &minor); err == nil && minor >= 36 {
		return nil
	}
	return []string{"--feature-gates=MutatingAdmissionPolicy=true", "--runtime-config=admissionregistration.k8s.io/v1beta1=true"}
}

// wantVersion is the version install must choose on this release.
func wantVersion() string {
	if cluster.AtLeast(36) {
		return guard.VersionV1
	}
	return guard.VersionV1beta1
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes `kubectl bound-token ARGS` in-process against the cluster.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runAs(t, cluster.Kubeconfig, args...)
}

func runAs(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	var r result
	r.stdout, r.stderr, r.code = framework.RunPlugin(strings.NewReader(""), kubeconfig, args...)
	return r
}

func (r result) mustCode(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

var (
	installOnce sync.Once
	installRes  result
)

// installed installs the guard once for the package, through the plugin,
// and checks that install proved it acts.
func installed(t *testing.T) {
	t.Helper()
	installOnce.Do(func() { installRes = run(t, "guard", "install", "--yes") })
	if installRes.code != 0 || !strings.Contains(installRes.stderr, "the guard acts:") {
		t.Fatalf("guard install: exit %d, want 0 and proved acting\nstdout:\n%s\nstderr:\n%s", installRes.code, installRes.stdout, installRes.stderr)
	}
}

func daysAgo(n int) time.Time { return time.Now().UTC().AddDate(0, 0, -n) }

// day is today (kube-apiserver's UTC day) plus offset days, as YYYY-MM-DD.
func day(offset int) string { return time.Now().UTC().AddDate(0, 0, offset).Format(time.DateOnly) }

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// marks are the labels and annotations migrate --apply writes on an
// invalidation for clean-up today, guarded 90 days, of a Secret never
// used before (pkg/legacy invalidate.go, invalidation). A nil value
// removes the key in the merge patch.
type marks struct{ labels, annotations map[string]any }

func cleanUpMarks() marks {
	return marks{
		labels: map[string]any{legacy.LabelInvalidSince: day(0), legacy.LabelGuardUntil: day(legacy.DefaultGuardDays)},
		annotations: map[string]any{
			legacy.AnnotationInvalidatedOn:  day(0),
			legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp,
			legacy.AnnotationLastUsedBefore: legacy.LastUsedNone,
		},
	}
}

// patch is the merge patch that writes m.
func (m marks) patch() []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": m.labels, "annotations": m.annotations}})
	return b
}

// mark writes m on the Secret as the administrator, and waits a moment:
// kube-apiserver's token authenticator reads Secrets through an informer,
// which must see the label before a presented token is judged by it.
func mark(t *testing.T, s *corev1.Secret, m marks) *corev1.Secret {
	t.Helper()
	out, err := cluster.Client.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, m.patch(), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	return out
}

// tokenClient is a client of its own that presents the Secret's token,
// as a workload would: nothing of the plugin, no admin credentials.
func tokenClient(t *testing.T, s *corev1.Secret) kubernetes.Interface {
	t.Helper()
	cfg := rest.AnonymousClientConfig(cluster.RESTConfig)
	cfg.BearerToken = string(s.Data[corev1.ServiceAccountTokenKey])
	cfg.UserAgent = "yearly-report/1.0"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// present sends one GET /api with the Secret's token and returns the
// HTTP status.
func present(t *testing.T, s *corev1.Secret) int {
	t.Helper()
	var code int
	res := tokenClient(t, s).Discovery().RESTClient().Get().AbsPath("/api").Do(ctx)
	res.StatusCode(&code)
	if code == 0 {
		t.Fatalf("presenting the token of %s/%s: no answer: %v", s.Namespace, s.Name, res.Error())
	}
	return code
}

// legacyToken creates a legacy token Secret (not listed in its
// ServiceAccount, so kube-controller-manager's cleaner never touches it)
// filled by the token controller.
func legacyToken(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return cluster.CreateLegacySecret(t, ns, "app", name, false)
}
