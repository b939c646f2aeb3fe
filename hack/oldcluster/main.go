// Command oldcluster makes a fresh local control plane (hack/local-cluster.sh,
// started with --storage-media-type=application/json) look like one that has
// run for years, for `make demo`: it sets the day kube-apiserver began
// tracking legacy token use and backdates Secrets through etcd, with the
// e2e suite's own helpers (test/e2e/framework SetTrackingSinceNow,
// BackdateNow).
//
//	oldcluster -kubeconfig FILE [-tracking-days N] [-age-days N] [NAMESPACE/SECRET ...]
//
// Exit codes: 0 done, 1 a change failed, 2 bad arguments.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig printed by `hack/local-cluster.sh up` (its folder holds the cluster's env file)")
	trackingDays := flag.Int("tracking-days", 0, "set the legacy token tracking start this many days ago (0: leave it)")
	ageDays := flag.Int("age-days", 0, "backdate the named Secrets' creationTimestamp this many days")
	flag.Parse()
	if *kubeconfig == "" || (flag.NArg() > 0 && *ageDays <= 0) || (flag.NArg() == 0 && *trackingDays <= 0) {
		fmt.Fprintln(os.Stderr, "oldcluster: give -kubeconfig, and -tracking-days N or -age-days N with NAMESPACE/SECRET arguments")
		os.Exit(2)
	}
	var secrets [][2]string
	for _, a := range flag.Args() {
		ns, name, ok := strings.Cut(a, "/")
		if !ok || ns == "" || name == "" {
			fmt.Fprintf(os.Stderr, "oldcluster: %q is not NAMESPACE/SECRET\n", a)
			os.Exit(2)
		}
		secrets = append(secrets, [2]string{ns, name})
	}
	c, err := framework.Attach(*kubeconfig)
	if err != nil {
		fail(err)
	}
	now := time.Now().UTC()
	if *trackingDays > 0 {
		day := now.AddDate(0, 0, -*trackingDays)
		if err := c.SetTrackingSinceNow(day); err != nil {
			fail(err)
		}
		fmt.Printf("legacy token use tracked since %s\n", day.Format(framework.DayFormat))
	}
	for _, s := range secrets {
		created := now.AddDate(0, 0, -*ageDays)
		if err := c.BackdateNow(framework.SecretsGVR, s[0], s[1], created); err != nil {
			fail(err)
		}
		fmt.Printf("secret %s/%s created %s\n", s[0], s[1], created.Format(framework.DayFormat))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "oldcluster: %v\n", err)
	os.Exit(1)
}
