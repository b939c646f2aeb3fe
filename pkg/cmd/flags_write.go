package cmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// throttleFlags are shared by the commands that change many objects.
type throttleFlags struct {
	Concurrency int
	QPS         float32
	Burst       int
}

func defaultThrottleFlags() throttleFlags { return throttleFlags{Concurrency: 8, QPS: 50, Burst: 100} }

// addThrottleFlags binds --concurrency (of what, "Secrets" or
// "workloads"), --qps and --burst.
func addThrottleFlags(cmd *cobra.Command, t *throttleFlags, what string) {
	fl := cmd.Flags()
	fl.IntVar(&t.Concurrency, "concurrency", t.Concurrency, "How many "+what+" to change at once.")
	fl.Float32Var(&t.QPS, "qps", t.QPS, "Most requests per second sent to the apiserver.")
	fl.IntVar(&t.Burst, "burst", t.Burst, "Most requests sent in a burst above --qps.")
}

func (t *throttleFlags) validate() error {
	if t.Concurrency < 1 || t.QPS <= 0 || t.Burst < 1 {
		return fmt.Errorf("--concurrency, --qps and --burst must be positive")
	}
	return nil
}

// writeFlags are migrate's, restore's and switch's: throttling and --dry-run.
type writeFlags struct {
	// DryRun is read from kubectl's --dry-run (cmdutil.AddDryRunFlag) in
	// complete.
	DryRun cmdutil.DryRunStrategy
	throttleFlags
}

func defaultWriteFlags() writeFlags {
	return writeFlags{DryRun: cmdutil.DryRunNone, throttleFlags: defaultThrottleFlags()}
}

func addWriteFlags(cmd *cobra.Command, w *writeFlags, what, dryRunHelp string) {
	// kubectl's --dry-run (k8s.io/kubectl/pkg/cmd/util AddDryRunFlag and
	// GetDryRunStrategy): none|client|server, a bare --dry-run is client.
	addDryRunFlag(cmd)
	cmd.Flags().Lookup("dry-run").Usage = `Must be "none", "server", or "client". ` + dryRunHelp
	addThrottleFlags(cmd, &w.throttleFlags, what)
}

// complete reads --dry-run as kubectl does.
func (w *writeFlags) complete(cmd *cobra.Command) error {
	var err error
	w.DryRun, err = cmdutil.GetDryRunStrategy(cmd)
	return err
}

func (w *writeFlags) validate() error { return w.throttleFlags.validate() }

// unasked refuses, before anything is read, an --apply that would change
// the cluster without --yes when stdin is not a terminal to ask on.
func (w *writeFlags) unasked(apply, yes bool, in io.Reader) error {
	if apply && w.DryRun == cmdutil.DryRunNone && !yes && !isTerminal(in) {
		return usageErrorf("--apply changes the cluster: add --yes to confirm (stdin is not a terminal to ask on)")
	}
	return nil
}

// newThrottledClient is the one way a command raises client-go's default
// 5 requests per second, for commands that send many.
func newThrottledClient(cfg *rest.Config, qps float32, burst int) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	return kubernetes.NewForConfig(cfg)
}

// client is preset (a test's fake) or a client of f's cluster at --qps
// and --burst; its errors are usage errors.
func (t *throttleFlags) client(f cmdutil.Factory, preset kubernetes.Interface) (kubernetes.Interface, error) {
	if preset != nil {
		return preset, nil
	}
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	c, err := newThrottledClient(cfg, t.QPS, t.Burst)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return c, nil
}

// newAuditClients are the typed client, the metadata-only one an audit
// lists Secrets with (legacy.ScanOptions.Metadata) and the dynamic one it
// reads the pod specs of other APIs with (legacy.ScanOptions.Dynamic), at
// qps and burst, sharing one HTTP client and so one connection.
func newAuditClients(cfg *rest.Config, qps float32, burst int) (kubernetes.Interface, metadata.Interface, dynamic.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, nil, nil, err
	}
	md, err := metadata.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, nil, nil, err
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	return cs, md, dyn, err
}
