// Package rotate tests `wait` and `rotate` on a real control plane: the
// OpenShift resources are OpenShift's own CRDs (from the openshift/api
// module, modcache.OpenShiftAPIVersion), HyperShift's HostedCluster its own
// (from the openshift/hypershift/api module, modcache.HyperShiftAPIVersion),
// and a simulated kube-apiserver operator (test/sim/kasoperator,
// also run by `make demo`) writes the status the real one writes, through
// the real CRD's rules. The apiserver closes watches after 2-4 s
// (--min-request-timeout=2), so every wait longer than that resumes a watch
// the server closed.
package rotate

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

var (
	cluster *framework.Cluster
	dyn     dynamic.Interface
)

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: fmt.Sprintf("rotate-%d", os.Getpid()), APIServerArgs: []string{"--min-request-timeout=2"}},
		func(c *framework.Cluster) { cluster = c })
}

func run(kubeconfig string, args ...string) framework.Result {
	return runWithInput(strings.NewReader(""), kubeconfig, args...)
}

func runWithInput(in io.Reader, kubeconfig string, args ...string) framework.Result {
	return framework.Run(in, kubeconfig, args...)
}

// openShift installs the CRDs once and starts a fresh simulated operator
// for the test; it stops when the test ends. One at a time: two would both
// roll out and write conflicting node states.
func openShift(t *testing.T, configure func(*kasoperator.Operator)) *kasoperator.Operator {
	t.Helper()
	cluster.InstallCRD(t, "authentications.config.openshift.io", false)
	cluster.InstallCRD(t, "kubeapiservers.operator.openshift.io", false)
	ensureDyn(t)
	op := kasoperator.New(dyn)
	if configure != nil {
		configure(op)
	}
	resetOp(t, op, "", 7, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		op.Wait()
		checkWrites(t, op)
	})
	runOp(t, op, ctx)
	return op
}

func ensureDyn(t testing.TB) {
	t.Helper()
	if dyn == nil {
		var err error
		if dyn, err = dynamic.NewForConfig(cluster.RESTConfig); err != nil {
			t.Fatal(err)
		}
	}
}

// resetOp settles the simulator's objects (kasoperator.Operator.Reset).
func resetOp(t testing.TB, op *kasoperator.Operator, issuer string, revision int32, trusted []openshift.ServiceAccountIssuer) {
	t.Helper()
	if err := op.Reset(context.Background(), issuer, revision, trusted); err != nil {
		t.Fatal(err)
	}
}

// runOp starts the simulator until ctx ends.
func runOp(t testing.TB, op *kasoperator.Operator, ctx context.Context) {
	t.Helper()
	if err := op.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkWrites fails t if the apiserver refused any of the simulator's
// status writes: the real operator's writes pass the real CRD's rules.
func checkWrites(t testing.TB, op *kasoperator.Operator) {
	t.Helper()
	for _, err := range op.Rejected() {
		t.Errorf("the simulated operator wrote a status the real CRD rejects: %v", err)
	}
}
