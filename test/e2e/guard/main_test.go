// Package guard tests the guard inside kube-apiserver (guard install,
// status, uninstall: a MutatingAdmissionPolicy) against a real
// kube-apiserver, etcd and kube-controller-manager: legacy Secrets are
// filled by the real token controller, their tokens presented by a plain
// client with the plugin not running, and rejected, labelled and restored
// by the real apiserver alone.
package guard

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
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

// agent is the user agent of the client that presents a token here, as the
// workload that holds it would.
const agent = "yearly-report/1.0"

func TestMain(m *testing.M) {
	// JSON storage lets a test backdate a Secret through etcd, for migrate's
	// verdict and the cleaner's period.
	opts := framework.Options{JSONStorage: true, APIServerArgs: policyAPIArgs(), TrackingSince: framework.DaysAgo(trackedDays)}
	framework.Main(m, opts, func(c *framework.Cluster) { cluster = c })
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

// run executes `kubectl bound-token ARGS` in-process against the cluster.
func run(t *testing.T, args ...string) framework.Result {
	t.Helper()
	return runAs(t, cluster.Kubeconfig, args...)
}

func runAs(t *testing.T, kubeconfig string, args ...string) framework.Result {
	t.Helper()
	return framework.Run(strings.NewReader(""), kubeconfig, args...)
}

var (
	installOnce sync.Once
	installRes  framework.Result
)

// installed installs the guard once for the package, through the plugin,
// and checks that install proved it acts.
func installed(t *testing.T) {
	t.Helper()
	installOnce.Do(func() { installRes = run(t, "guard", "install", "--yes") })
	if installRes.Code != 0 || !strings.Contains(installRes.Stderr, "the guard acts:") {
		t.Fatalf("guard install: exit %d, want 0 and proved acting\nstdout:\n%s\nstderr:\n%s", installRes.Code, installRes.Stdout, installRes.Stderr)
	}
}

// legacyToken creates a legacy token Secret (not listed in its
// ServiceAccount, so kube-controller-manager's cleaner never touches it)
// filled by the token controller.
func legacyToken(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return cluster.CreateLegacySecret(t, ns, "app", name, false)
}
