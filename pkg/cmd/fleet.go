package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/doctor"
	"github.com/bound-token/kubectl-bound-token/pkg/fleet"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/openreports"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// fleetFlags select the contexts of a run over many clusters
// (migrate's audit, report and apply, doctor, switch's plan, restore of a
// fleet folder).
type fleetFlags struct {
	Contexts       []string
	AllContexts    bool
	Selector       string
	Parallel       int
	ContextTimeout time.Duration

	// factory gives the kubeconfig the contexts are read from; set by
	// complete when the fleet is on.
	factory cmdutil.Factory
	// json: -o json, which the report writes itself (fleet.Report.
	// WriteJSON, the JSON printer's bytes at a fraction of its cost).
	json bool
	// allNamespaces (-A) and impersonate (--as, --as-uid, --as-group)
	// apply in every context.
	allNamespaces bool
	impersonate   rest.ImpersonationConfig
	// pluginPolicy is the user's kuberc credential plugin policy, for
	// every context's exec plugin.
	pluginPolicy clientcmdapi.PluginPolicy
	// eachContext runs in every context, those reaching a cluster an
	// earlier one reached too (fleet.Options.EachContext).
	eachContext bool
}

// complete checks the fleet flags in a command's Complete. With a fleet
// it keeps f for the run and reports done: the command's own client is
// not built (each context brings its own, and the current context may
// be none of them).
func (ff *fleetFlags) complete(f cmdutil.Factory, cmd *cobra.Command, refuse map[string]string) (done bool, err error) {
	if err := ff.validate(cmd, refuse); err != nil {
		return false, usageErrorf("%w", err)
	}
	if !ff.enabled() {
		return false, nil
	}
	ff.factory = f
	if ff.pluginPolicy, err = credentialPluginPolicy(cmd); err != nil {
		return false, usageErrorf("%w", err)
	}
	if o := cmd.Flag("output"); o != nil && o.Value.String() == "json" {
		ff.json = true
	}
	if a := cmd.Flag("all-namespaces"); a != nil && a.Value.String() == "true" {
		ff.allNamespaces = true
	}
	if as := cmd.Flag("as"); as != nil {
		ff.impersonate.UserName = as.Value.String()
	}
	if uid := cmd.Flag("as-uid"); uid != nil {
		ff.impersonate.UID = uid.Value.String()
	}
	if g := cmd.Flag("as-group"); g != nil {
		if groups, ok := g.Value.(interface{ GetSlice() []string }); ok {
			ff.impersonate.Groups = groups.GetSlice()
		}
	}
	if ff.impersonate.UserName == "" && (ff.impersonate.UID != "" || len(ff.impersonate.Groups) > 0) {
		// clientcmd's own rule (k8s.io/client-go/tools/clientcmd/
		// validation.go, validateAuthInfo), said once instead of as
		// every context's invalid configuration.
		return false, usageErrorf("--as-group and --as-uid need --as: name the user to impersonate")
	}
	return true, nil
}

func addFleetFlags(f cmdutil.Factory, cmd *cobra.Command) *fleetFlags {
	ff := &fleetFlags{Parallel: fleet.DefaultParallel, ContextTimeout: fleet.DefaultContextTimeout}
	fl := cmd.Flags()
	fl.StringSliceVar(&ff.Contexts, "contexts", nil, "Run in each of these kubeconfig contexts (comma-separated) and print one report; contexts reaching the same cluster run once. Read-only, except migrate --apply, which changes them in cluster waves.")
	fl.BoolVar(&ff.AllContexts, "all-contexts", false, "Run in every context of the kubeconfig (see --contexts).")
	fl.StringVar(&ff.Selector, "context-selector", "", "With --contexts or --all-contexts, only the contexts whose name matches this regular expression.")
	fl.IntVar(&ff.Parallel, "parallel", ff.Parallel, "With --contexts or --all-contexts, how many clusters to check at once.")
	fl.DurationVar(&ff.ContextTimeout, "context-timeout", ff.ContextTimeout, "With --contexts or --all-contexts, how long each cluster may take; a cluster that takes longer is reported as timed out.")
	// The last name of the comma-separated list is completed.
	contexts := completeKubeconfig(f, kubeconfigContexts)
	_ = cmd.RegisterFlagCompletionFunc("contexts", func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		head, last := "", toComplete
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			head, last = toComplete[:i+1], toComplete[i+1:]
		}
		names, _ := contexts(c, args, last)
		for i := range names {
			names[i] = head + names[i]
		}
		return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	return ff
}

func (ff *fleetFlags) enabled() bool { return ff != nil && (len(ff.Contexts) > 0 || ff.AllContexts) }

// singleClusterFlags name one cluster or one identity: they would be
// ignored in a fleet, where each context brings its own.
var singleClusterFlags = []string{"context", "cluster", "server", "user", "token"}

// validate checks the fleet flags; refuse lists what the command cannot do
// over many clusters (flag name: why).
func (ff *fleetFlags) validate(cmd *cobra.Command, refuse map[string]string) error {
	if !ff.enabled() {
		for _, n := range []string{"context-selector", "parallel", "context-timeout"} {
			if cmd.Flags().Changed(n) {
				return fmt.Errorf("--%s only makes sense with --contexts or --all-contexts", n)
			}
		}
		return nil
	}
	if len(ff.Contexts) > 0 && ff.AllContexts {
		return fmt.Errorf("give --contexts or --all-contexts, not both")
	}
	for _, n := range singleClusterFlags {
		if f := cmd.Flag(n); f != nil && f.Changed {
			return fmt.Errorf("--%s names one cluster: with --contexts or --all-contexts each context brings its own; drop --%s", n, n)
		}
	}
	// A FleetReport has no name; wide and the plain tables are the
	// commands' own, and every other -o prints the FleetReport.
	if f := cmd.Flag("output"); f != nil && f.Value.String() == "name" {
		return fmt.Errorf("--output %q is not supported with --contexts or --all-contexts; use wide, json, yaml, jsonpath or go-template", "name")
	}
	for n, why := range refuse {
		if f := cmd.Flag(n); f != nil && f.Changed {
			return fmt.Errorf("--%s cannot be used with --contexts or --all-contexts: %s", n, why)
		}
	}
	if ff.Parallel < 1 || ff.ContextTimeout <= 0 {
		return fmt.Errorf("--parallel and --context-timeout must be positive")
	}
	return nil
}

// fleetTable writes the checked clusters' rows; the command's own columns
// follow CONTEXT.
type fleetTable func(w io.Writer, sections []fleet.Section)

// runFleet runs fn in each selected context and prints the report: with
// the command's -o printer (built in its Complete) as one FleetReport,
// otherwise (p nil) table(s), then failures and the summary on stderr. Its
// error carries the fleet's exit code.
func runFleet(ctx context.Context, streams genericiooptions.IOStreams, ff *fleetFlags, command string, p printers.ResourcePrinter,
	qps float32, burst int, fn fleet.Func, table fleetTable) error {
	if ctx == nil {
		ctx = context.Background()
	}
	raw, names, o, err := ff.options(streams, qps, burst)
	if err != nil {
		return err
	}
	onTerminal := o.Progress != nil
	r, err := fleet.Run(ctx, raw, names, command, fn, o)
	if onTerminal {
		fmt.Fprintln(streams.ErrOut)
	}
	if err != nil {
		return failedErrorf("interrupted: %v", err)
	}
	switch {
	case ff.json:
		if err := r.WriteJSON(streams.Out); err != nil {
			return err
		}
	case p != nil:
		if err := p.PrintObj(r, streams.Out); err != nil {
			return err
		}
	default:
		var checked []fleet.Section
		for _, s := range r.Clusters {
			if s.Error == "" {
				checked = append(checked, s)
			}
		}
		table(streams.Out, checked)
	}
	printFleetSummary(streams.ErrOut, r)
	switch r.ExitCode() {
	case fleet.ExitOK:
		return nil
	case fleet.ExitFailed:
		return silent(ExitFailed)
	}
	return silent(ExitUsage)
}

// options reads the kubeconfig and selects the contexts of a fleet run,
// with the fleet's options (progress on stderr only on a terminal).
func (ff *fleetFlags) options(streams genericiooptions.IOStreams, qps float32, burst int) (*clientcmdapi.Config, []string, fleet.Options, error) {
	loader := ff.factory.ToRawKubeConfigLoader()
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, nil, fleet.Options{}, usageErrorf("%w", err)
	}
	names, err := fleet.Select(&raw, fleet.Selection{Contexts: ff.Contexts, All: ff.AllContexts, Selector: ff.Selector})
	if err != nil {
		return nil, nil, fleet.Options{}, usageErrorf("--contexts/--all-contexts: %v", err)
	}
	ns, explicit, err := loader.Namespace()
	if err != nil {
		return nil, nil, fleet.Options{}, usageErrorf("%w", err)
	}
	if !explicit {
		ns = "" // each context's own
	}
	o := fleet.Options{Namespace: ns, AllNamespaces: ff.allNamespaces, Impersonate: ff.impersonate, Parallel: ff.Parallel, ContextTimeout: ff.ContextTimeout, QPS: qps, Burst: burst,
		CredentialPluginPolicy: ff.pluginPolicy, Terminal: isTerminal(streams.In), Warnings: streams.ErrOut, EachContext: ff.eachContext}
	if isTerminal(streams.ErrOut) {
		o.Progress = func(done, total int) { fmt.Fprintf(streams.ErrOut, "\r\033[Kclusters done: %d/%d", done, total) }
	}
	return &raw, names, o, nil
}

// printFleetSummary says on stderr which clusters could not be checked,
// which are aliases, and the totals.
func printFleetSummary(w io.Writer, r *fleet.Report) {
	for _, s := range r.Clusters {
		if len(s.Aliases) > 0 {
			fmt.Fprintf(w, "context %s: the same cluster as %s, run once\n", strings.Join(s.Aliases, ", "), s.Context)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "error: context %s (%s): %s: %s\n", s.Context, s.Server, s.Reason, s.Error)
		}
	}
	sum := r.Summary
	failed := "none"
	if len(sum.FailedClusters) > 0 {
		failed = strings.Join(sum.FailedClusters, ", ")
	}
	fmt.Fprintf(w, "%d cluster%s (%d context%s), %d checked: %s; failed: %s.\n", sum.Clusters, text.Plural(sum.Clusters),
		sum.Contexts, text.Plural(sum.Contexts), sum.Checked, countsLine(sum.Verdicts), failed)
}

// prefixLines writes each line of b to w after prefix.
func prefixLines(w io.Writer, prefix string, b []byte) {
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) > 0 {
			fmt.Fprintf(w, "%s%s", prefix, line)
		}
	}
}

// runFleet is migrate's audit in each context, and with --report its
// OpenReports objects written into each (--apply is runFleetApply,
// migrate_fleet.go). --audit-log is refused: an audit log belongs to one
// cluster.
func (o *MigrateOptions) runFleet(ctx context.Context) error {
	stderr := &lockedWriter{w: o.ErrOut}
	fn := func(ctx context.Context, c *fleet.Cluster) (fleet.Result, error) {
		md, err := metadata.NewForConfigAndClient(c.Config, c.HTTPClient)
		if err != nil {
			return fleet.Result{}, err
		}
		dyn, err := dynamic.NewForConfigAndClient(c.Config, c.HTTPClient)
		if err != nil {
			return fleet.Result{}, err
		}
		one := *o
		one.Client, one.Metadata, one.Dynamic, one.Namespace = c.Client, md, dyn, c.Namespace
		// --report writes into each audited cluster: checked before its
		// audit, written after it, said on stderr by context.
		var rc versioned.Interface
		if o.Report {
			if rc, err = versioned.NewForConfigAndClient(c.Config, c.HTTPClient); err != nil {
				return fleet.Result{}, err
			}
			if err := openreports.Preflight(ctx, c.Client, o.reportNeeds(c.Namespace)); err != nil {
				return fleet.Result{}, err
			}
			one.sink = newReportSink(o.Now().UTC())
		}
		r, err := one.audit(ctx)
		if err != nil {
			return fleet.Result{}, err
		}
		res := fleet.Result{Object: r, Counts: r.Summary.Verdicts}
		if o.Report {
			done, err := writeReports(ctx, rc, one.sink, o.reportScope(c.Namespace))
			if err := reportWritten(stderr, "context "+c.Context+": ", done, err); err != nil {
				fmt.Fprintf(stderr, "error: %v\n", err)
				res.Failed = true
			}
		}
		return res, nil
	}
	table := func(w io.Writer, sections []fleet.Section) {
		wide, now := o.format() == "wide", o.Now()
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "CONTEXT\t"+auditHeader(wide))
		for _, s := range sections {
			for _, it := range s.Result.(*legacy.Report).Items {
				fmt.Fprintf(tw, "%s\t", s.Context)
				writeAuditRow(tw, it, now, wide)
			}
		}
		_ = tw.Flush()
		// What each cluster's verdicts rest on, named by context.
		for _, s := range sections {
			var b bytes.Buffer
			one := *o
			one.ErrOut = &b
			one.printBasis(s.Result.(*legacy.Report).Summary.Info)
			prefixLines(o.ErrOut, "context "+s.Context+": ", b.Bytes())
		}
	}
	return runFleet(ctx, o.IOStreams, o.fleet, "migrate", o.printer, o.QPS, o.Burst, fn, table)
}

// runFleet is doctor in each context; a context whose API does not
// answer is reported as not checked.
func (o *DoctorOptions) runFleet(ctx context.Context) error {
	opts := doctor.Options{ServiceAccount: o.ServiceAccount, IssuerTimeout: o.IssuerTimeout, HTTPClient: o.HTTPClient}
	stderr := &lockedWriter{w: o.ErrOut}
	fn := func(ctx context.Context, c *fleet.Cluster) (fleet.Result, error) {
		dyn, err := dynamic.NewForConfigAndClient(c.Config, c.HTTPClient)
		if err != nil {
			return fleet.Result{}, err
		}
		one := opts
		one.Namespace = c.Namespace
		one.RESTConfig = c.Config
		// --report: checked before the checks, written after them.
		var rc versioned.Interface
		if o.Report {
			if rc, err = versioned.NewForConfigAndClient(c.Config, c.HTTPClient); err != nil {
				return fleet.Result{}, err
			}
			if err := openreports.Preflight(ctx, c.Client, doctorReportNeeds); err != nil {
				return fleet.Result{}, err
			}
		}
		checks := doctor.Run(ctx, c.Client, dyn, one)
		if len(checks) == 1 && checks[0].Name == "api" && checks[0].Status == doctor.Fail {
			return fleet.Result{}, fmt.Errorf("%s", checks[0].Message)
		}
		counts := map[string]int{}
		for _, ch := range checks {
			counts[string(ch.Status)]++
		}
		failed := doctor.Failed(checks)
		if o.Report {
			done, err := openreports.Write(ctx, rc, openreports.PlanDoctor(openreports.DoctorResults(checks, o.Now().UTC())))
			if err := reportWritten(stderr, "context "+c.Context+": ", done, err); err != nil {
				fmt.Fprintf(stderr, "error: %v\n", err)
				failed = true
			}
		}
		return fleet.Result{Object: map[string]any{"checks": checks, "failed": failed}, Counts: counts, Failed: failed}, nil
	}
	table := func(w io.Writer, sections []fleet.Section) {
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "CONTEXT\tSTATUS\tCHECK\tMESSAGE")
		for _, s := range sections {
			for _, c := range s.Result.(map[string]any)["checks"].([]doctor.Check) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Context, strings.ToUpper(string(c.Status)), c.Name, c.Message)
				if c.Fix != "" {
					fmt.Fprintf(tw, "\t\t\tfix: %s\n", c.Fix)
				}
			}
		}
		_ = tw.Flush()
	}
	return runFleet(ctx, o.IOStreams, o.fleet, "doctor", o.printer, 0, 0, fn, table)
}

// runFleet is switch's plan in each context; --apply is refused.
func (o *SwitchOptions) runFleet(ctx context.Context) error {
	fn := func(ctx context.Context, c *fleet.Cluster) (fleet.Result, error) {
		ns := c.Namespace
		if o.AllNamespaces {
			ns = ""
		}
		dyn, err := dynamic.NewForConfigAndClient(c.Config, c.HTTPClient)
		if err != nil {
			return fleet.Result{}, err
		}
		plans, err := switcher.Find(ctx, workload.Clients{Kube: c.Client, Dynamic: dyn}, switcher.FindOptions{Namespace: ns, Refs: o.Refs, Selector: o.Selector,
			Warn: func(msg string) { o.warn(c.Context + ": " + msg) }}, o.options())
		if err != nil {
			return fleet.Result{}, err
		}
		adviseHolds(plans)
		counts := map[string]int{}
		for _, p := range plans {
			counts[p.Verdict]++
		}
		if plans == nil {
			plans = []*switcher.Plan{}
		}
		return fleet.Result{Object: plans, Counts: counts}, nil
	}
	table := func(w io.Writer, sections []fleet.Section) {
		for i, s := range sections {
			if i > 0 {
				fmt.Fprintln(w)
			}
			plans := s.Result.([]*switcher.Plan)
			fmt.Fprintf(w, "CONTEXT %s: %d workload%s read legacy token Secrets\n", s.Context, len(plans), text.Plural(len(plans)))
			for _, p := range plans {
				writePlan(w, p)
			}
		}
	}
	return runFleet(ctx, o.IOStreams, o.fleet, "switch", o.printer, o.QPS, o.Burst, fn, table)
}
