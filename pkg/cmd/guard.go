package cmd

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
)

var guardLong = templates.LongDesc(`
	Restore, at the first rejected use, a legacy token Secret that migrate --apply
	invalidated for clean-up and that a client still presents: the client sees one
	rejected request instead of an outage.

	A guard is for clean-up, never for revocation: whoever holds a guarded token can
	re-enable it by presenting it. Invalidate a leaked token with migrate --apply
	--revoke, which is never guarded. Each guarded Secret carries the last day it is
	guarded (migrate --guard-for); after it, a rejected use changes nothing.`)

// NewCmdGuard groups the guards: the admission policy inside kube-apiserver
// (install, status, uninstall) and the watch for clusters without one.
func NewCmdGuard(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "guard (install | status | uninstall | watch)",
		DisableFlagsInUseLine: true,
		Short:                 "Restore an invalidated legacy token at its first rejected use",
		Long:                  guardLong,
		Args:                  argsUsage(cobra.NoArgs),
		Run: func(cmd *cobra.Command, args []string) {
			_ = cmd.Help()
		},
	}
	cmd.AddCommand(NewCmdGuardInstall(f, streams))
	cmd.AddCommand(NewCmdGuardStatus(f, streams))
	cmd.AddCommand(NewCmdGuardUninstall(f, streams))
	cmd.AddCommand(newCmdGuardWatch(f, streams))
	return cmd
}
