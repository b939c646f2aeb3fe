package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	flag "github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/pkg/restart"
)

var (
	rotateIssuerLong = templates.LongDesc(`
		Change OpenShift's service-account issuer and follow the kube-apiserver rollout.

		Validates the URL, shows the current and the new issuer, backs up
		authentications.config.openshift.io/cluster to a 0600 file (--backup), records
		latestAvailableRevision, patches spec.serviceAccountIssuer (only if the object did
		not change meanwhile), then waits for the kube-apiserver rollout like
		'wait --since-revision' and prints until when the previous issuer stays trusted.
		A second rollout follows when the operator prunes it (24h later). Refused when 10
		issuers are already trusted (the operator's limit). '--rollback --from FILE'
		restores the issuer from a backup.

		Tokens held by running pods keep the old issuer until the pods restart:
		'--restart workloads' restarts Deployments, StatefulSets and DaemonSets as
		'kubectl rollout restart' does, namespace by namespace, skipping openshift-* and
		kube-* unless --restart-system; '--restart pods' deletes every pod (interrupts
		service; needs --yes).

		--dry-run=client shows the plan; --dry-run=server also sends the patch with
		dryRun=All, so the apiserver checks it without storing it. Every API call is
		repeated on transient errors.

		Exit codes: 0 done, 1 refused, not confirmed, a change or restart failed, or the
		rollout failed, 2 timeout, bad flags or input, not OpenShift: with 2 nothing was
		changed unless the message says so.`)

	rotateIssuerExample = templates.Examples(`
		# Show what changing the issuer would do, without changing anything
		kubectl bound-token rotate issuer https://oidc.example.com/cluster-a --dry-run=client

		# Change the issuer, wait for the rollout, then restart workloads
		kubectl bound-token rotate issuer https://oidc.example.com/cluster-a --restart workloads --yes

		# Undo it from the backup written by the previous command
		kubectl bound-token rotate issuer --rollback --from authentication-cluster-20261123T080000Z.yaml --yes

		# The result as JSON
		kubectl bound-token rotate issuer https://oidc.example.com/cluster-a --yes -o json`)
)

// RotateIssuerKind is the kind of rotate issuer's -o output.
const RotateIssuerKind = "IssuerRotation"

// RotateIssuerOptions holds what `rotate issuer` needs.
type RotateIssuerOptions struct {
	rotateOptions

	Issuer        string
	AllowNonHTTPS bool
	Backup        string
	Rollback      bool
	From          string

	Restart           string
	RestartSystem     bool
	RestartNamespaces []string
	RestartPause      time.Duration
}

func NewRotateIssuerOptions(streams genericiooptions.IOStreams) *RotateIssuerOptions {
	return &RotateIssuerOptions{rotateOptions: newRotateOptions(streams), Restart: openshift.RestartNone, RestartPause: 5 * time.Second}
}

func NewCmdRotateIssuer(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewRotateIssuerOptions(streams)
	cmd := newRotateCommand(f, o, &cobra.Command{
		Use:               "issuer (URL | --rollback --from FILE) [--restart none|workloads|pods] [--yes]",
		Short:             "Change OpenShift's service-account issuer and follow the rollout",
		Long:              rotateIssuerLong,
		Example:           rotateIssuerExample,
		Args:              argsUsage(cobra.MaximumNArgs(1)),
		ValidArgsFunction: cobra.NoFileCompletions,
	}, "How long to wait for the kube-apiserver rollout (exit 2 after).", "Do not ask for confirmation.")
	o.registerCompletions(f, cmd)
	return cmd
}

// addFlags adds the flags only `rotate issuer` has (the deprecated
// `rotate --issuer` form adds them too).
func (o *RotateIssuerOptions) addFlags(fl *flag.FlagSet) {
	fl.BoolVar(&o.AllowNonHTTPS, "allow-non-https", false, "Accept a non-https issuer (OpenShift then disables issuer discovery).")
	fl.StringVar(&o.Backup, "backup", "", "File for the backup of authentications.config.openshift.io/cluster (default authentication-cluster-TIME.yaml). Never overwritten.")
	fl.BoolVar(&o.Rollback, "rollback", false, "Restore the issuer from a backup (--from).")
	fl.StringVar(&o.From, "from", "", "Backup file written by an earlier rotate issuer, for --rollback.")
	fl.StringVar(&o.Restart, "restart", o.Restart, "After the rollout: none, workloads (rolling restart) or pods (delete every pod; needs --yes).")
	fl.BoolVar(&o.RestartSystem, "restart-system", false, "Also restart in openshift-* and kube-* namespaces.")
	fl.StringArrayVar(&o.RestartNamespaces, "restart-namespace", nil, "Restart only in this namespace; repeat for several. Default: every namespace.")
	fl.DurationVar(&o.RestartPause, "restart-pause", o.RestartPause, "Pause between namespaces when restarting.")
}

func (o *RotateIssuerOptions) registerCompletions(f cmdutil.Factory, cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("restart", cobra.FixedCompletions(openshift.RestartModes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("restart-namespace", completeNames(f, namespaceNames))
	_ = cmd.MarkFlagFilename("from", "yaml", "yml")
	_ = cmd.MarkFlagFilename("backup", "yaml", "yml")
}

func (o *RotateIssuerOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	return o.complete(f, cmd, args, &o.Issuer, nil)
}

func (o *RotateIssuerOptions) Validate() error {
	switch {
	case o.Rollback && o.From == "":
		return fmt.Errorf("--rollback needs --from FILE (a backup written by rotate issuer)")
	case o.From != "" && !o.Rollback:
		return fmt.Errorf("--from is only used with --rollback")
	case o.Rollback && o.Issuer != "":
		return fmt.Errorf("give the issuer URL or --rollback --from FILE, not both")
	case !o.Rollback && o.Issuer == "":
		return fmt.Errorf("give the new issuer URL, or --rollback --from FILE")
	}
	if o.Issuer != "" {
		if err := openshift.ValidateIssuer(o.Issuer, o.AllowNonHTTPS); err != nil {
			if errors.Is(err, openshift.ErrNotHTTPS) {
				return fmt.Errorf("%v; pass --allow-non-https if that is intended", err)
			}
			return err
		}
	}
	found := false
	for _, m := range openshift.RestartModes {
		found = found || m == o.Restart
	}
	if !found {
		return fmt.Errorf("--restart %q is not supported; use one of %s", o.Restart, strings.Join(openshift.RestartModes, ", "))
	}
	if o.Restart == openshift.RestartPods && !o.Yes && o.DryRunStrategy == cmdutil.DryRunNone {
		return fmt.Errorf("--restart pods deletes every pod and interrupts service; add --yes to confirm, or use --restart workloads")
	}
	if o.Timeout <= 0 || o.RestartPause < 0 {
		return fmt.Errorf("--timeout must be positive and --restart-pause not negative")
	}
	return nil
}

func (o *RotateIssuerOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := openshift.RotateIssuer(ctx, o.Client, o.Dynamic, openshift.IssuerRotation{
		Issuer:       o.Issuer,
		RollbackFrom: o.From,
		Backup:       o.Backup,
		DryRun:       o.DryRunStrategy,
		Confirm:      o.confirm,
		Timeout:      o.Timeout,
		Restart:      o.Restart,
		RestartOptions: restart.Options{Namespaces: o.RestartNamespaces, IncludeSystem: o.RestartSystem,
			Pause: o.RestartPause},
		Now:    o.Now,
		Report: o.reporter(),
	})
	if res != nil && res.Restart != nil {
		o.reportRestart(res.Restart)
	}
	if err != nil {
		var re *openshift.RotateError
		if errors.As(err, &re) && re.Stage == openshift.StageRollout {
			_ = o.output(RotateIssuerKind, res, nil)
		}
		return o.exitError(err, res)
	}
	if o.dryRun() {
		o.sayDryRun("nothing changed")
	}
	return o.output(RotateIssuerKind, res, func() {
		if !o.dryRun() {
			fmt.Fprintf(o.Out, "issuer %s active\n", res.Issuer)
		}
	})
}

// reporter prints RotateIssuer's steps on stderr: the plan, the backup and
// the patch always, the rollout as wait does, the trust window, and restart
// progress on a terminal only.
func (o *RotateIssuerOptions) reporter() func(openshift.Step) {
	rollout := newRolloutReporter(o.ErrOut)
	progress := o.progressLine()
	return func(s openshift.Step) {
		switch s.Kind {
		case openshift.StepPlanned:
			fmt.Fprint(o.ErrOut, s.Plan.Describe())
		case openshift.StepBackedUp:
			fmt.Fprintf(o.ErrOut, "backup of authentications.config.openshift.io/cluster: %s (restore with: kubectl bound-token rotate issuer --rollback --from %s)\n", s.Backup, s.Backup)
		case openshift.StepPatched:
			fmt.Fprintf(o.ErrOut, "spec.serviceAccountIssuer set to %s; waiting for a kube-apiserver revision after %d\n", openshift.EffectiveIssuer(s.Plan.New), s.Plan.Revision)
		case openshift.StepRollout:
			rollout.progress(s.Progress)
		case openshift.StepReconnect:
			rollout.reconnect(s.Message)
		case openshift.StepRolledOut:
			fmt.Fprintf(o.ErrOut, "kube-apiserver at revision %d on %d/%d nodes\n", s.Progress.Revision, s.Progress.AtRevision, s.Progress.Nodes)
		case openshift.StepTrustWindow:
			if s.Err != nil {
				fmt.Fprintf(o.ErrOut, "warning: %v\n", s.Err)
			} else {
				fmt.Fprintln(o.ErrOut, s.Message)
			}
			if o.Restart == openshift.RestartNone {
				fmt.Fprintln(o.ErrOut, "pods keep tokens from the previous issuer until they restart: run again with --restart workloads, or restart them yourself")
			}
		case openshift.StepRestarting:
			progress(s.Message)
		}
	}
}

// confirm asks on a terminal; a script must say --yes.
func (o *RotateIssuerOptions) confirm(*openshift.IssuerPlan) (bool, error) {
	return o.confirmed("changing the issuer rolls out kube-apiserver on every node; add --yes to confirm", nil)
}

func (o *RotateIssuerOptions) reportRestart(r *restart.Result) {
	verb := "restarted %d workloads"
	if o.Restart == openshift.RestartPods {
		verb = "deleted %d pods"
	}
	fmt.Fprintf(o.ErrOut, verb+" in %d namespaces", len(r.Restarted), r.Namespaces)
	if len(r.Skipped) > 0 {
		fmt.Fprintf(o.ErrOut, "; left alone: %s (add --restart-system to include them)", strings.Join(r.Skipped, ", "))
	}
	fmt.Fprintln(o.ErrOut)
}

// exitError maps RotateIssuer's stages to exit codes and adds what only the
// command knows: its flags and how to follow or undo a change.
func (o *RotateIssuerOptions) exitError(err error, res *openshift.IssuerRotationResult) error {
	if exit, ok := confirmationExitError(err); ok {
		return exit
	}
	var re *openshift.RotateError
	if !errors.As(err, &re) {
		return usageErrorf("%w", err)
	}
	switch re.Stage {
	case openshift.StageInput:
		return usageErrorf("%w", err)
	case openshift.StagePlan:
		if errors.Is(err, openshift.ErrNotOpenShift) {
			return usageErrorf("%w", err)
		}
		// Plan only reads: nothing changed.
		if clusterUnreachable(err) {
			return usageErrorf("%w", unreachable(err, "nothing changed"))
		}
		return failedErrorf("%w", err)
	case openshift.StageConfirm:
		return failedErrorf("%w", err)
	case openshift.StageBackup:
		if errors.Is(err, fileutil.ErrExists) {
			return usageErrorf("%v; choose another --backup; nothing changed", err)
		}
		return usageErrorf("%v; nothing changed", err)
	case openshift.StageRollout:
		// The change is made either way: say how to follow or undo it.
		out := rolloutError(re.Err, res.Rollout, o.Timeout).(*ExitError)
		out.Err = fmt.Errorf("%w; the issuer stays %s: follow with `kubectl bound-token wait --since-revision %d` or undo with `kubectl bound-token rotate issuer --rollback --from %s`",
			out.Err, res.Issuer, res.SinceRevision, res.Backup)
		return out
	}
	return failedErrorf("%w", err)
}
