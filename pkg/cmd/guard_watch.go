package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
)

// The guard as a watch, for clusters without admission policies. The
// watching, the rule and the restores are pkg/guard's (watch.go,
// rules.go); this file is flags and printing.

var (
	guardWatchLong = templates.LongDesc(`
		Guard, from this terminal, the legacy token Secrets that migrate --apply invalidated
		for clean-up, on clusters where the admission-policy guard (guard install) cannot run:
		list and watch them, and restore one as soon as a client presents its token.

		When kube-apiserver rejects an invalidated token it writes today's day into the
		Secret's kubernetes.io/legacy-token-last-used label. The watch sees that change within
		moments and removes the kubernetes.io/legacy-token-invalid-since label (a JSON patch
		whose test operations check that the Secret is still as judged), records
		bound-token.kubectl.io/restored-on-use (the day) and restored-by=guard-watch, prints
		the Secret on stdout and leaves a Warning Event on it (reason LegacyTokenRestoredOnUse)
		saying what to do next. The client sees one rejected request; its next one is accepted.

		Only Secrets this tool invalidated for clean-up are restored (annotation
		bound-token.kubectl.io/invalidated-for=clean-up, with their last-used label changed
		since the invalidation, the same day included), and only up to their guard day (label
		bound-token.kubectl.io/guard-until, compared with the day kube-apiserver wrote).
		Revocations (migrate --apply --revoke), kube-controller-manager's cleaner's
		invalidations and labels set by hand are never touched. A guard is for clean-up,
		never for revocation: whoever holds a guarded token can re-enable it by presenting it.

		It follows the Secrets' state, not a stream of changes: after a watch the server
		closed it resumes from where it was, and when that point is gone (410) it lists them
		again and restores every one whose last-used label differs from the value recorded at
		invalidation. So it also restores, when it starts, a Secret presented while it was not
		running.

		It runs with your own credentials and needs list, watch and patch on Secrets (and
		create on Events, else restores leave no Event), in the namespace or, with -A, across
		all of them; it checks them before it starts. It asks for the Secrets' metadata only,
		so no token reaches it, but Kubernetes RBAC has no metadata-only verb: the list and
		watch rights it needs allow reading every Secret's data. Scope it with -n where you
		can (a Role in one namespace instead of a ClusterRole), and bound it with --for.

		Without -A it guards one namespace: -n, else the kubeconfig context's, as kubectl get
		does. It runs until interrupted (Ctrl-C, SIGTERM) unless --for says how long, like
		kubectl get --watch: a guard that stopped on its own would leave Secrets unguarded
		while you believe them guarded, and each Secret's guard day already bounds what it
		restores. Restores under way when it ends are finished first. Progress goes to stderr
		on a terminal only; warnings (a restore being retried, a watch failing) always.

		Exit codes: 0 it ran until --for ended or it was interrupted, every restore done; 1 a
		restore failed and was still failing at the end (the client is still refused; each
		is named on stderr), or it lost its access while running; 2 bad flags, missing
		rights, or the cluster could not be reached at the start: nothing was guarded.`)

	guardWatchExample = templates.Examples(`
		# Guard every namespace until interrupted (after migrate -A --apply)
		kubectl bound-token guard watch -A

		# Guard one namespace for a canary window of a day, and keep a record of restores
		kubectl bound-token guard watch -n shop --for 24h > restores.txt

		# What a restore left on the Secret
		kubectl events -n shop --for secret/builder-token-x7k2p
		kubectl get secret -n shop builder-token-x7k2p -o jsonpath='{.metadata.annotations}'`)
)

// GuardWatchOptions holds what `guard watch` needs.
type GuardWatchOptions struct {
	For           time.Duration
	AllNamespaces bool

	Namespace string
	// Client and Metadata are preset by tests.
	Client   kubernetes.Interface
	Metadata metadata.Interface
	// Now is the clock of the run's end and the Events (tests).
	Now func() time.Time
	genericiooptions.IOStreams
}

func NewGuardWatchOptions(streams genericiooptions.IOStreams) *GuardWatchOptions {
	return &GuardWatchOptions{IOStreams: streams, Now: time.Now}
}

func newCmdGuardWatch(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdGuardWatchOptions(f, NewGuardWatchOptions(streams))
}

// newCmdGuardWatchOptions binds the command to o, which tests preset.
func newCmdGuardWatchOptions(f cmdutil.Factory, o *GuardWatchOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "watch [-n NAMESPACE | -A] [--for DURATION]",
		DisableFlagsInUseLine: true,
		Short:                 "Restore invalidated legacy tokens at their first rejected use, watching from here",
		Long:                  guardWatchLong,
		Example:               guardWatchExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.For, "for", 0, "How long to guard (e.g. 8h); 0 guards until interrupted.")
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Guard every namespace (needs the rights across all of them).")
	_ = cmd.RegisterFlagCompletionFunc("for", cobra.FixedCompletions([]string{"1h", "8h", "24h"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *GuardWatchOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	if o.Client != nil {
		return nil // a test's fakes
	}
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return err
	}
	// Restores may come in bursts (a job presenting many tokens): more
	// than client-go's default 5 requests per second.
	o.Client, o.Metadata, _, err = newAuditClients(cfg, 50, 100)
	return err
}

func (o *GuardWatchOptions) Validate() error {
	if o.For < 0 {
		return fmt.Errorf("--for must be positive, or 0 to guard until interrupted")
	}
	return nil
}

func (o *GuardWatchOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.For)
		defer cancel()
	}
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	terminal := isTerminal(o.ErrOut)
	start := o.Now()
	w := &guard.Watcher{Metadata: o.Metadata, Client: o.Client, Namespace: ns, Now: o.Now,
		OnRestore: func(r guard.Restore) {
			line := fmt.Sprintf("%s/%s restored: its token was presented on %s", r.Namespace, r.Name, r.Day)
			if r.ServiceAccount != "" {
				line += " (service account " + r.ServiceAccount + ")"
			}
			fmt.Fprintln(o.Out, line)
		},
		OnNote: func(s string) {
			if terminal {
				fmt.Fprintln(o.ErrOut, s)
			}
		},
		OnWarning: func(s string) { fmt.Fprintln(o.ErrOut, "warning: "+s) },
	}
	if terminal {
		until := "until interrupted (Ctrl-C)"
		if o.For > 0 {
			until = "until " + start.Add(o.For).Format("2006-01-02 15:04:05 MST") + " or interrupted (Ctrl-C)"
		}
		fmt.Fprintf(o.ErrOut, "guard watch runs %s\n", until)
	}
	res, err := w.Run(ctx)
	if err != nil {
		switch {
		case errors.Is(err, guard.ErrNotStarted) && clusterUnreachable(err):
			return usageErrorf("%w", unreachable(err, "nothing is guarded"))
		case errors.Is(err, guard.ErrNotStarted):
			return usageErrorf("%w", err)
		}
		return failedErrorf("%w", err)
	}
	if terminal {
		d := o.Now().Sub(start)
		if d < time.Minute {
			d = d.Round(100 * time.Millisecond)
		} else {
			d = d.Round(time.Second)
		}
		fmt.Fprintf(o.ErrOut, "guard watch ended after %s: %d restored\n", d, len(res.Restored))
	}
	for _, f := range res.Failed {
		fmt.Fprintf(o.ErrOut, "error: %s/%s is still invalid, its restore failed: %v\n", f.Namespace, f.Name, f.Err)
	}
	if len(res.Failed) > 0 {
		return failedErrorf("%d restore(s) failed: the clients presenting those tokens are still refused", len(res.Failed))
	}
	return nil
}
