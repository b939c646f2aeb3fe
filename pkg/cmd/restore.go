package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/fleetapply"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

var (
	restoreLong = templates.LongDesc(`
		Undo "migrate --apply" or "switch --apply" from its backup folder.

		Deleted Secrets are re-created with their original data, so the old token works
		again as long as its service account (with the same uid) still exists; invalidated
		Secrets lose the kubernetes.io/legacy-token-invalid-since label and every
		bound-token.kubectl.io/ mark migrate or a guard wrote (a last-used label migrate
		cleared comes back), so that each equals its backup apart from what the platform
		changed since, such as a newer last-used day; service accounts list their Secrets
		again. A restore never adds a guard back (label bound-token.kubectl.io/guard-until),
		not even to a Secret backed up guarded. Restore is idempotent: run it as often as
		needed.

		The whole backup is checked before anything changes: the folder must not be
		writable by others, must hold no symlinks, and every file must match the sha256
		recorded in its index. A Secret that someone replaced since is left alone.

		A switch backup puts pod templates back byte for byte, each only if it is still
		the template the switch wrote, and only while the Secrets it reads are valid: a
		template whose Secret migrate has since invalidated or deleted is refused, naming
		the migrate backup to restore first.

		A fleet folder (written by migrate --contexts/--all-contexts --apply; it holds
		fleet-index.json and one folder per cluster, named by the uid of the cluster's
		kube-system namespace) is restored cluster by cluster, each through the context
		its index names (--contexts: only those). Before anything changes in a cluster,
		the context must still reach the cluster whose uid names the folder: a context
		that now reaches another cluster is refused in one line, and nothing is changed
		there. With a fleet folder, -o json and yaml print one FleetReport.

		Exit codes: 0 restored, 1 some object could not be restored (or, with a fleet
		folder, some cluster was refused or failed while others were restored), 2 bad
		flags, a backup that fails its checks, or no cluster restored (nothing
		changed).`)

	restoreExample = templates.Examples(`
		# Bring back everything an apply changed
		kubectl bound-token restore --from ./legacy-backup

		# Bring back two Secrets only
		kubectl bound-token restore --from ./legacy-backup --only ci/builder-token-x7k2p --only ci/deployer-token

		# Show what would change, checked by the server, without changing anything
		kubectl bound-token restore --from ./legacy-backup --dry-run=server

		# Undo a fleet apply in every cluster it changed, or in two of them
		kubectl bound-token restore --from ./fleet-backup
		kubectl bound-token restore --from ./fleet-backup --contexts prod-eu,prod-us`)
)

// RestoreOptions holds what `restore` needs.
type RestoreOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	From string
	Only []string
	// Contexts select the clusters of a fleet folder (by the contexts
	// its index names); fleet is set when From is a fleet folder.
	Contexts []string
	fleet    *fleetFlags
	writeFlags

	Client kubernetes.Interface
	// Dynamic reads and writes the workloads of other APIs (an Argo
	// Rollout's template) that a switch backup holds.
	Dynamic dynamic.Interface
	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewRestoreOptions(streams genericiooptions.IOStreams) *RestoreOptions {
	return &RestoreOptions{
		PrintFlags: newResultPrintFlags(),
		writeFlags: defaultWriteFlags(),
		IOStreams:  streams,
	}
}

func NewCmdRestore(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRestore(f, NewRestoreOptions(streams))
}

// newCmdRestore binds the command to o; tests give o a fake Client first.
func newCmdRestore(f cmdutil.Factory, o *RestoreOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "restore --from DIR [--only NAMESPACE/NAME ...]",
		DisableFlagsInUseLine: true,
		Short:                 "Bring back legacy token Secrets (migrate) or pod templates (switch) from a backup",
		Long:                  restoreLong,
		Example:               restoreExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags, "name")
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "Backup folder written by migrate --apply or switch --apply.")
	fl.StringArrayVar(&o.Only, "only", nil, "Restore only this Secret, as NAMESPACE/NAME; repeat for several.")
	fl.StringSliceVar(&o.Contexts, "contexts", nil, "With a fleet folder (migrate --contexts/--all-contexts --apply): restore only the clusters these contexts of its index reached (comma-separated).")
	addWriteFlags(cmd, &o.writeFlags, "Secrets", `"client" only prints what would change; "server" sends every change as a server-side dry run.`)
	_ = cmd.RegisterFlagCompletionFunc("from", completeBackupDirs)
	_ = cmd.RegisterFlagCompletionFunc("contexts", completeKubeconfig(f, kubeconfigContexts))
	return cmd
}

// Complete builds the printer and reads --dry-run before anything else,
// so that a bad -o fails before a single object is restored.
func (o *RestoreOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags, "name"); err != nil {
		return err
	}
	if err := o.writeFlags.complete(cmd); err != nil {
		return usageErrorf("%w", err)
	}
	if o.From != "" && fleetapply.IsFleetFolder(o.From) {
		// Each cluster through its own context: the current one may be
		// none of them.
		return o.completeFleet(f, cmd)
	}
	if o.Client == nil {
		if o.Dynamic, err = f.DynamicClient(); err != nil {
			return usageErrorf("%w", err)
		}
	}
	o.Client, err = o.throttleFlags.client(f, o.Client)
	return err
}

func (o *RestoreOptions) Validate() error {
	if o.From == "" {
		return fmt.Errorf("--from DIR is required: the backup folder that migrate --apply printed")
	}
	if err := o.validateFleet(); err != nil {
		return err
	}
	return o.writeFlags.validate()
}

func (o *RestoreOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.fleet != nil {
		return o.runFleet(ctx)
	}
	// Every file the restore reads is checked before anything changes.
	f, err := backup.Inspect(o.From)
	if err != nil {
		return usageErrorf("%w", restoreFlagAdvice(err))
	}
	r, err := legacy.OpenRestore(f, o.Only)
	if err != nil {
		return usageErrorf("%w", restoreFlagAdvice(err))
	}
	if f.Index.Mode == backup.ModeSwitch {
		sw, err := switcher.OpenRestore(f)
		if err != nil {
			return usageErrorf("%w", restoreFlagAdvice(err))
		}
		return o.runSwitch(ctx, sw)
	}
	// One cluster-wide check covers the common admin; namespace by
	// namespace only when that fails.
	if kubeapi.CheckAccess(ctx, o.Client, "", legacy.RestorePermissions()) != nil {
		for _, ns := range r.Namespaces() {
			if err := kubeapi.CheckAccess(ctx, o.Client, ns, legacy.RestorePermissions()); err != nil {
				return usageErrorf("%w", err)
			}
		}
	}
	progress := newProgress(o.ErrOut).of(r.Count())
	opts := legacy.RestoreOptions{DryRun: o.DryRun, Workers: o.Concurrency, Done: progress.step}
	covered := fmt.Sprintf("%d Secret%s", r.Count(), text.Plural(r.Count()))
	format := outputFormat(o.PrintFlags)
	if o.printer == nil || streamable(format) {
		// Written namespace by namespace as each is restored: memory
		// holds the namespaces in flight, not the report.
		s := newOutcomeStream(o.Out, format, "LegacyTokenRestore", o.From)
		counts := map[string]int{}
		var werr error
		opts.Stream = func(oc backup.Outcome) {
			counts[oc.Result]++
			if werr == nil {
				werr = s.item(oc)
			}
		}
		legacy.Restore(ctx, o.Client, r, opts)
		progress.end()
		if werr == nil {
			werr = s.end(counts)
		}
		if werr != nil {
			s.abandon()
			return failedErrorf("write the report: %v; the restore went on, and the output above is incomplete: run restore again to see every outcome", werr)
		}
		return o.summarize(ctx, counts, s.failed, covered)
	}
	out := legacy.Restore(ctx, o.Client, r, opts)
	progress.end()
	failed := false
	for _, oc := range out {
		failed = failed || oc.Failed()
	}
	return o.finish(ctx, out, failed, covered)
}

// runSwitch restores the pod templates of a switch backup.
func (o *RestoreOptions) runSwitch(ctx context.Context, r *switcher.Restorable) error {
	if o.DryRun != cmdutil.DryRunNone {
		return usageErrorf("--dry-run is not supported for a switch backup")
	}
	progress := newProgress(o.ErrOut).of(r.Count())
	blocking := func(ctx context.Context, ns string, names []string) ([]string, error) {
		return legacy.BlockingSecrets(ctx, o.Client, o.From, ns, names)
	}
	out := switcher.Restore(ctx, workload.Clients{Kube: o.Client, Dynamic: o.Dynamic}, r, switcher.RestoreOptions{Workers: o.Concurrency, Done: progress.step, Blocking: blocking})
	progress.end()
	failed := false
	for _, oc := range out {
		failed = failed || (oc.Result != switcher.OutRestored && oc.Result != backup.OutUnchanged)
	}
	return o.finish(ctx, out, failed, fmt.Sprintf("%d workload%s", len(out), text.Plural(len(out))))
}

// finish prints a restore's outcomes and summary (covered: what of the
// backup they cover) and gives its exit.
func (o *RestoreOptions) finish(ctx context.Context, out []backup.Outcome, failed bool, covered string) error {
	counts := countOutcomes(out)
	if err := printOutcomeList(o.printer, outputFormat(o.PrintFlags), o.Out, "LegacyTokenRestore", o.From, out, counts); err != nil {
		return err
	}
	return o.summarize(ctx, counts, failed, covered)
}

// summarize ends a restore: its summary line on stderr, and its exit.
func (o *RestoreOptions) summarize(ctx context.Context, counts map[string]int, failed bool, covered string) error {
	fmt.Fprintf(o.ErrOut, "summary: %s (%s in the backup covered)\n", countsLine(counts), covered)
	if ctx.Err() != nil {
		return failedErrorf("interrupted; run restore again to finish")
	}
	if failed {
		return silent(ExitFailed)
	}
	return nil
}

// restoreFlagAdvice words legacy.OpenRestore's errors about a selection
// with the flag that made it.
func restoreFlagAdvice(err error) error {
	var se *legacy.SelectionError
	if errors.As(err, &se) {
		return fmt.Errorf("--only %w", err)
	}
	return err
}
