// Package hypershift tests `rotate hosted-cluster` and doctor's HyperShift
// checks on a real control plane with the workloads rig: the HostedCluster
// CRD is HyperShift's own (from the openshift/hypershift/api module,
// framework.HyperShiftAPIVersion, with its schema and CEL rules), a
// simulated hostedcluster controller (controller_test.go) reads the
// signing-key Secret as HyperShift does and rolls the hosted kube-apiserver
// Deployment, which the real deployment controller, kube-scheduler and
// kwok's fake nodes roll out. The apiserver closes watches after 2-4 s
// (--min-request-timeout=2), so every wait resumes watches the server
// closed; the audit log shows rotate watched.
package hypershift

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: fmt.Sprintf("hypershift-%d", os.Getpid()), Workloads: true, Audit: true,
		APIServerArgs: []string{"--min-request-timeout=2"}},
		func(c *framework.Cluster) { cluster = c })
}

// A rollout on kwok takes a few seconds; the margin is for a loaded
// 2-core machine.
const rolloutTimeout = 2 * time.Minute

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func run(args ...string) result {
	return runWithInput(strings.NewReader(""), args...)
}

func runWithInput(in io.Reader, args ...string) result {
	var r result
	start := time.Now()
	r.stdout, r.stderr, r.code = framework.RunPlugin(in, cluster.Kubeconfig, args...)
	r.took = time.Since(start)
	return r
}

func (r result) must(t *testing.T, code int, stderrHas ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not contain %q:\n%s", s, r.stderr)
		}
	}
	return r
}
