// Package scale is issue #27's benchmark (`make bench-scale`): the audit,
// the apply and the restore on a cluster that grows from 2,000 to 20,000
// to 100,000 legacy token Secrets (10 per namespace, 10,000 namespaces),
// with Helm release Secrets, a Deployment with its ReplicaSet and pod and a
// CronJob with its Job beside them in every namespace. One local control
// plane for the package; its rows are in bench/rows-scale.txt.
//
// SCALE_KEEP=1 leaves the control plane running at the end and prints its
// kubeconfig, to look at the 100,000 Secrets by hand (-v=6,
// GODEBUG=gctrace=1); stop it with `hack/local-cluster.sh down --name NAME`.
package scale

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{
		Name: fmt.Sprintf("scale-%d", os.Getpid()),
		// Legacy Secrets are created with their token, ca.crt and
		// namespace already filled, so the token controller signs none
		// (see createNamespace); the serviceaccount controller still
		// creates a default ServiceAccount in each of the 10,000
		// namespaces, at its client's rate (20/s by default).
		KCMArgs: []string{"--kube-api-qps=500", "--kube-api-burst=1000"},
		// The set up sends 48 writes at a time, and the benchmarks LIST
		// beside the controller's writes: kube-apiserver's defaults (400
		// and 200) are enough, raised so that a 429 never stalls a run.
		APIServerArgs: []string{"--max-requests-inflight=1000", "--max-mutating-requests-inflight=500"},
		// Use tracked for long: the verdicts are those of a cluster
		// upgraded to 1.28 long since (invalidate, switch-workload).
		TrackingSince: framework.DaysAgo(400),
		Keep:          os.Getenv("SCALE_KEEP") != "",
	}, func(c *framework.Cluster) { cluster = c })
}
