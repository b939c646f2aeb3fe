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
	"os/signal"
	"syscall"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

func TestMain(m *testing.M) {
	c, err := framework.Start(framework.Options{
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
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale: cannot start the local control plane: %v\n", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = c.Stop()
		os.Exit(1)
	}()
	// Use tracked for long: the verdicts are those of a cluster upgraded
	// to 1.28 long since (invalidate, switch-workload).
	if err := c.SetTrackingSinceNow(framework.DaysAgo(400)); err != nil {
		fmt.Fprintf(os.Stderr, "scale: %v\n", err)
		_ = c.Stop()
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	if os.Getenv("SCALE_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "scale: SCALE_KEEP is set: control plane %s left running, kubeconfig %s\n", c.Name, c.Kubeconfig)
	} else if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "scale: stopping the local control plane: %v\n", err)
	}
	os.Exit(code)
}
