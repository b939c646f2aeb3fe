package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
)

var (
	guardUninstallLong = templates.LongDesc(`
		Delete the guard's MutatingAdmissionPolicyBinding and MutatingAdmissionPolicy
		(` + guard.PolicyName + `), only if this tool wrote them (label
		app.kubernetes.io/managed-by=kubectl-bound-token). Secrets invalidated with a guard day
		stay invalid, now unguarded: their count is said; restore them, or run guard watch.
		It asks first on a terminal; scripts add --yes. --dry-run=server deletes nothing.

		Exit codes: 0 deleted, or nothing to delete; 1 not confirmed or an object of that name
		that this tool did not write; 2 bad flags, no --yes without a terminal, or an
		unreachable cluster.`)

	guardUninstallExample = templates.Examples(`
		# Remove the guard
		kubectl bound-token guard uninstall

		# In a script
		kubectl bound-token guard uninstall --yes`)
)

// GuardUninstallOptions holds what `guard uninstall` needs.
type GuardUninstallOptions struct {
	Yes bool
	guardPolicyOptions
}

func NewCmdGuardUninstall(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GuardUninstallOptions{guardPolicyOptions: guardPolicyOptions{PrintFlags: newResultPrintFlags(), IOStreams: streams}}
	cmd := &cobra.Command{
		Use:                   "uninstall [--yes] [--dry-run=server]",
		DisableFlagsInUseLine: true,
		Short:                 "Delete the guard's MutatingAdmissionPolicy and binding",
		Long:                  guardUninstallLong,
		Example:               guardUninstallExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Do not ask for confirmation (needed when stdin is not a terminal).")
	addDryRunFlag(cmd)
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func (o *GuardUninstallOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	return o.complete(f, cmd, o.Validate, false)
}

func (o *GuardUninstallOptions) Validate() error {
	if o.DryRunStrategy == cmdutil.DryRunClient {
		return fmt.Errorf("--dry-run=client: uninstall must read the cluster to know what it would delete; use --dry-run=server")
	}
	return nil
}

func (o *GuardUninstallOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := guard.Uninstall(ctx, o.Cluster, guard.UninstallOptions{DryRun: o.DryRunStrategy, Confirm: o.confirm})
	if err != nil {
		return guardError(err, "nothing was deleted")
	}
	if o.printer != nil {
		if err := o.printer.PrintObj(newResult(GuardUninstallKind, res), o.Out); err != nil {
			return err
		}
	} else {
		suffix := ""
		if res.DryRun {
			suffix = " (server dry run)"
		}
		if !res.Changes() {
			fmt.Fprintln(o.Out, "the guard is not installed: nothing to delete")
		}
		if res.Binding == guard.ActionDelete {
			fmt.Fprintf(o.Out, "mutatingadmissionpolicybinding.%s/%s deleted%s\n", guard.Group, guard.BindingName, suffix)
		}
		if res.Policy == guard.ActionDelete {
			fmt.Fprintf(o.Out, "mutatingadmissionpolicy.%s/%s deleted%s\n", guard.Group, guard.PolicyName, suffix)
		}
	}
	if res.Guarded != nil && *res.Guarded > 0 && res.Changes() {
		fmt.Fprintf(o.ErrOut, "warning: no guard now for %d invalidated legacy token Secret%s with a guard day: kubectl bound-token guard watch guards them, restore --from BACKUP brings them back\n",
			*res.Guarded, text.Plural(*res.Guarded))
	}
	return nil
}

func (o *GuardUninstallOptions) confirm(p guard.Plan) (bool, error) {
	return confirmed(o.Yes, o.In, o.ErrOut, "uninstalling the guard deletes an admission policy from kube-apiserver; add --yes to confirm (stdin is not a terminal to ask on); nothing changed", func() {
		fmt.Fprintf(o.ErrOut, "delete MutatingAdmissionPolicyBinding and MutatingAdmissionPolicy %s (%s/%s): invalidated Secrets are no longer restored at their first use.\n", guard.PolicyName, guard.Group, p.Version)
	})
}
