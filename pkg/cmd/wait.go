package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
)

var (
	waitLong = templates.LongDesc(`
		Wait for OpenShift's kube-apiserver rollout to finish, e.g. after a change of the
		service-account issuer.

		Follows kubeapiservers.operator.openshift.io/cluster with a watch (resumed when the
		server closes it) and ends when NodeInstallerProgressing is False with reason
		AllNodesAtLatestRevision AND every node's currentRevision equals
		latestAvailableRevision. Right after a change the condition can still report the
		OLD revision as done: pass --since-revision with the revision from before the
		change so that only a newer one counts (rotate does this for you).

		A failed install (NodeInstallerDegraded) is reported at once with each node's
		errors. Needs list and watch on kubeapiservers.operator.openshift.io.

		Exit codes: 0 the rollout is done, 1 an install failed, 2 timeout, not OpenShift,
		or bad flags.`)

	waitExample = templates.Examples(`
		# Wait for the current rollout to finish (at most 30 minutes)
		kubectl bound-token wait

		# After changing spec.serviceAccountIssuer by hand at revision 11
		kubectl bound-token wait --since-revision 11 --timeout 45m

		# The final per-node state as JSON
		kubectl bound-token wait -o json`)
)

// WaitOptions holds what `wait` needs.
type WaitOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	SinceRevision int32
	Timeout       time.Duration

	Client  dynamic.Interface
	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewWaitOptions(streams genericiooptions.IOStreams) *WaitOptions {
	return &WaitOptions{PrintFlags: newResultPrintFlags(), SinceRevision: openshift.NoRevision, Timeout: 30 * time.Minute, IOStreams: streams}
}

func NewCmdWait(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewWaitOptions(streams)
	cmd := &cobra.Command{
		Use:                   "wait [--since-revision N] [--timeout 30m]",
		DisableFlagsInUseLine: true,
		Short:                 "Wait for OpenShift's kube-apiserver rollout to reach every node",
		Long:                  waitLong,
		Example:               waitExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
	}
	fl := cmd.Flags()
	fl.Int32Var(&o.SinceRevision, "since-revision", o.SinceRevision, "Only a rollout to a revision above N counts (the latestAvailableRevision from before the change).")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "Give up after this long (exit 2).")
	addPrintFlags(cmd, o.PrintFlags)
	fl.Lookup("output").Usage = "Print the final per-node state (kind KubeAPIServerRollout). One of: (" + strings.Join(o.PrintFlags.AllowedFormats(), ", ") + ")."
	_ = cmd.RegisterFlagCompletionFunc("since-revision", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("timeout", cobra.FixedCompletions([]string{"10m", "30m", "1h"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *WaitOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if o.Client, err = f.DynamicClient(); err != nil {
		return usageErrorf("%w", err)
	}
	return nil
}

func (o *WaitOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	if o.SinceRevision < openshift.NoRevision {
		return fmt.Errorf("--since-revision must be 0 or more")
	}
	return nil
}

func (o *WaitOptions) Run(ctx context.Context) error {
	p, err := waitRollout(ctx, o.Client, o.SinceRevision, o.Timeout, o.ErrOut)
	if o.printer != nil && (err == nil || errors.Is(err, openshift.ErrFailed) || errors.Is(err, context.DeadlineExceeded)) {
		if perr := o.printer.PrintObj(newResult("KubeAPIServerRollout", p), o.Out); perr != nil {
			return perr
		}
	} else if err == nil {
		fmt.Fprintf(o.Out, "kube-apiserver at revision %d on %d/%d nodes\n", p.Revision, p.AtRevision, p.Nodes)
	}
	return err
}

// waitRollout runs the waiter with progress on stderr (terminal only) and
// failures always, and maps the outcome to exit codes.
func waitRollout(ctx context.Context, dyn dynamic.Interface, since int32, timeout time.Duration, errOut io.Writer) (openshift.Progress, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := newRolloutReporter(errOut)
	w := &openshift.Waiter{Client: dyn, SinceRevision: since, OnProgress: r.progress, OnReconnect: r.reconnect}
	p, err := w.Wait(ctx)
	return p, rolloutError(err, p, timeout)
}
