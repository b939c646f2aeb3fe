// Command openshift-sim turns a local control plane (hack/local-cluster.sh)
// into enough of OpenShift for `rotate issuer` and `wait`, for `make demo`:
// it installs OpenShift's own CRDs for authentications.config.openshift.io
// and kubeapiservers.operator.openshift.io (from the pinned openshift/api
// module, test/e2e/framework InstallCRDNow), settles them at revision 7 on
// three nodes, and runs the simulated cluster-kube-apiserver-operator the
// e2e suite tests against (test/sim/kasoperator) until SIGINT or SIGTERM.
//
//	openshift-sim -kubeconfig FILE [-step-delay 500ms]
//
// It prints "ready" on stdout once it watches for issuer changes. Exit
// codes: 0 stopped by a signal, every status write accepted; 1 it could
// not start, or the apiserver refused a status write (the real CRD's rules,
// which the real operator's writes satisfy); 2 bad arguments.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig printed by `hack/local-cluster.sh up`")
	step := flag.Duration("step-delay", 500*time.Millisecond, "time between two status writes of a rollout")
	flag.Parse()
	if *kubeconfig == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "openshift-sim: give -kubeconfig FILE and nothing else")
		os.Exit(2)
	}
	c, err := framework.Attach(*kubeconfig)
	if err != nil {
		fail(err)
	}
	for _, crd := range []string{"authentications.config.openshift.io", "kubeapiservers.operator.openshift.io"} {
		if err := c.InstallCRDNow(crd); err != nil {
			fail(err)
		}
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	op := kasoperator.New(dyn)
	op.StepDelay = *step
	if err := op.Reset(ctx, "", 7, nil); err != nil {
		fail(err)
	}
	if err := op.Run(ctx); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	<-ctx.Done()
	op.Wait()
	if rej := op.Rejected(); len(rej) > 0 {
		for _, err := range rej {
			fmt.Fprintf(os.Stderr, "openshift-sim: the apiserver refused a status write: %v\n", err)
		}
		os.Exit(1)
	}
	fmt.Printf("stopped after %d rollout(s), every status write accepted\n", op.Rollouts())
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "openshift-sim: %v\n", err)
	os.Exit(1)
}
