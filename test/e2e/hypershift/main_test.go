// Package hypershift tests `rotate hosted-cluster` and doctor's HyperShift
// checks on a real control plane with the workloads rig: the HostedCluster
// CRD is HyperShift's own (from the openshift/hypershift/api module,
// modcache.HyperShiftAPIVersion, with its schema and CEL rules), a
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

func run(args ...string) framework.Result {
	return runWithInput(strings.NewReader(""), args...)
}

func runWithInput(in io.Reader, args ...string) framework.Result {
	return framework.Run(in, cluster.Kubeconfig, args...)
}
