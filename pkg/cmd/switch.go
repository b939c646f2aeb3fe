package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	"k8s.io/utils/clock"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

var (
	switchLong = templates.LongDesc(`
		Move the workloads that read legacy ServiceAccount token Secrets onto projected,
		bound tokens: the step that lets a migration finish.

		Deployments, StatefulSets, DaemonSets, ReplicaSets without an owner,
		ReplicationControllers and CronJobs whose pod template mounts a legacy token
		Secret are looked at, and where the cluster serves them, the workloads of other
		APIs whose template path this tool knows: Argo Rollouts (rollout.argoproj.io),
		Knative Services and Configurations (service.serving.knative.dev), KEDA
		ScaledJobs (scaledjob.keda.sh) and OpenShift DeploymentConfigs
		(deploymentconfig.apps.openshift.io). Without --apply nothing changes: each gets a unified diff of
		its pod template (as kubectl diff shows it) and a verdict, switchable or why not.
		-o yaml prints the changed manifests instead, one document per workload, for
		manifests kept at their source.

		The rewrite keeps the volume's name and mount paths: a secret volume of a legacy
		token (or a secret source of a projected volume) becomes a projected volume with a
		serviceAccountToken (at the old path of key token), configMap kube-root-ca.crt
		(ca.crt) and downwardAPI metadata.namespace (namespace), following the old items
		and defaultMode: the layout of the automatic kube-api-access volume. The token
		lives --duration (default 3607 s, which kube-apiserver extends for clients that
		read the file once, and reports as stale-token when used late); --audience is for
		tokens sent outside the cluster.

		Refused, with the reason: a pod that runs as another service account than the
		Secret's (its identity would change), a token read through an env var (it can never
		refresh), a Job or a bare Pod (immutable: the diff shows the change to make at the
		source), a workload owned by something else. Skipped unless named: workloads in
		kube-* and openshift-* namespaces (--include-system) and workloads managed by Helm,
		Argo CD or Flux, which would revert the change (--include-managed).

		With --apply, the right to get and patch each kind of workload involved is checked
		first (SelfSubjectAccessReview): a forbidden run stops before changing anything.
		--dry-run=client reports what would be switched without sending a change;
		--dry-run=server has the apiserver admit and validate each patch (dryRun=All) and
		store nothing; neither asks, backs up or waits. Otherwise, on a terminal it asks
		first; in scripts it needs --yes. Each workload
		is first written to --backup-dir (the format of migrate's backups), read back and
		checked; then its template is patched with the backed-up resourceVersion as a
		precondition, and each rollout is followed as kubectl rollout status does (--wait,
		--timeout); an Argo Rollout's by its own phase (Healthy, Degraded), a Knative
		Service's by its Ready condition. A CronJob or a ScaledJob is done once patched
		(its next Job uses the new template); a paused Deployment or Rollout, an OnDelete
		StatefulSet or DaemonSet, a ReplicaSet and a ReplicationController do not replace
		their pods, and a DeploymentConfig's rollout is not followed: reported as
		changed-not-rolled, never as rolled out (also with --wait=false). The run ends by naming the
		Secrets nothing reads any more, with the migrate command that judges them. An
		interrupted run is finished by the same command with the same --backup-dir. Undo
		with "kubectl bound-token restore --from DIR".

		Exit codes: 0 every selected workload switched (or nothing to do, or a plan
		without --apply), 1 something was refused, skipped, failed or not rolled out in
		time (the outcome says whether the template was changed), or the question was
		answered no, 2 bad flags or input, unreachable cluster or unusable backup folder:
		nothing changed.`)

	switchExample = templates.Examples(`
		# What would change in every namespace: a diff and a verdict per workload
		kubectl bound-token switch -A

		# The changed manifests, for a repository of manifests
		kubectl bound-token switch -n shop deployment/web -o yaml

		# Switch, keeping a backup, and wait for the rollouts
		kubectl bound-token switch -n shop --apply --backup-dir ./switch-backup

		# In a script, without waiting; finish an interrupted run with the same folder
		kubectl bound-token switch -A --apply --yes --wait=false --backup-dir ./switch-backup

		# Would the apiserver (and its admission webhooks) accept every patch?
		kubectl bound-token switch -n shop --apply --dry-run=server

		# A token for a service outside the cluster
		kubectl bound-token switch -n ci cronjob/report --audience vault --duration 1h

		# Undo
		kubectl bound-token restore --from ./switch-backup

		# What would change in every cluster of the kubeconfig (plans only)
		kubectl bound-token switch -A --all-contexts`)
)

// SwitchOptions holds what `switch` needs.
type SwitchOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Namespace      string
	AllNamespaces  bool
	Refs           []string
	Selector       string
	Duration       time.Duration
	Audience       string
	IncludeManaged bool
	IncludeSystem  bool

	Apply     bool
	Yes       bool
	BackupDir string
	Wait      bool
	Timeout   time.Duration

	// writeFlags: kubectl's --dry-run (with --apply) and throttling.
	writeFlags
	// fleet: the plan over many contexts (--contexts, --all-contexts).
	fleet *fleetFlags

	// Client is built in Complete unless a test set it.
	Client kubernetes.Interface
	// Dynamic reads the pod specs of other APIs (legacy.Unread).
	Dynamic dynamic.Interface
	// Clock names the backup folder and times the waits; a test sets a
	// fake one.
	Clock   clock.Clock
	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewSwitchOptions(streams genericiooptions.IOStreams) *SwitchOptions {
	return &SwitchOptions{
		PrintFlags: newResultPrintFlags(),
		Duration:   switcher.DefaultExpirationSeconds * time.Second,
		Wait:       true,
		Timeout:    10 * time.Minute,
		writeFlags: defaultWriteFlags(),
		Clock:      clock.RealClock{},
		IOStreams:  streams,
	}
}

func NewCmdSwitch(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdSwitch(f, NewSwitchOptions(streams))
}

// newCmdSwitch binds the command to o; tests give o a fake Client first.
func newCmdSwitch(f cmdutil.Factory, o *SwitchOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "switch [TYPE/NAME ...] [-n NAMESPACE | -A] [-l SELECTOR] [--duration 3607s] [--audience AUD] [-o yaml] [--apply [--dry-run=server] [--backup-dir DIR] [--yes] [--wait=false] [--timeout 10m]]",
		DisableFlagsInUseLine: true,
		Short:                 "Move the workloads that read legacy token Secrets onto projected tokens; with --apply, back up, patch and follow the rollouts",
		Long:                  switchLong,
		Example:               switchExample,
		ValidArgsFunction: func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if strings.Contains(toComplete, "/") {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []string
			for _, k := range switcher.KindNames() {
				out = append(out, k+"/")
			}
			return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
		},
		RunE: runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags, "name")
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look at every namespace.")
	fl.StringVarP(&o.Selector, "selector", "l", "", "Only workloads matching this label selector.")
	fl.DurationVar(&o.Duration, "duration", o.Duration, "Lifetime of the projected token (at least 10m). Only the default, 3607s, is extended by kube-apiserver for clients that read the file once.")
	fl.StringVar(&o.Audience, "audience", "", "Audience of the projected token, for tokens sent outside the cluster (default: the API's). Such a token is not extended, and the apiserver accepts it only if its audiences include the API's.")
	fl.BoolVar(&o.IncludeManaged, "include-managed", false, "Also switch workloads managed by Helm, Argo CD or Flux, which may revert the change.")
	fl.BoolVar(&o.IncludeSystem, "include-system", false, "Also switch workloads in kube-* and openshift-* namespaces, which operators own.")
	fl.BoolVar(&o.Apply, "apply", false, "Back up, then rewrite the switchable workloads and follow their rollouts.")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "With --apply, do not ask for confirmation (needed when stdin is not a terminal).")
	fl.StringVar(&o.BackupDir, "backup-dir", "", "Folder for the backup (created 0700). Default: ./bound-token-switch-TIMESTAMP. An existing folder from an interrupted run is resumed, with the same --duration and --audience.")
	fl.BoolVar(&o.Wait, "wait", o.Wait, "With --apply, wait for each rollout as kubectl rollout status does.")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "With --apply, how long to wait for the rollouts.")
	addWriteFlags(cmd, &o.writeFlags, "workloads", `With --apply: "client" reports what would be switched without sending a change; "server" sends each patch with dryRun=All (admitted and validated, nothing stored). Nothing is backed up, asked or waited for.`)
	o.fleet = addFleetFlags(f, cmd)
	_ = cmd.RegisterFlagCompletionFunc("backup-dir", completeBackupDirs)
	_ = cmd.RegisterFlagCompletionFunc("duration", cobra.FixedCompletions([]string{"3607s", "1h", "24h"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *SwitchOptions) Validate() error {
	s := int64(o.Duration / time.Second)
	if o.Duration%time.Second != 0 || s < switcher.MinExpirationSeconds || s > switcher.MaxExpirationSeconds {
		return fmt.Errorf("--duration %s: use whole seconds from 10m to 2^32 s, as the API allows", o.Duration)
	}
	if len(o.Refs) > 0 && o.AllNamespaces {
		return fmt.Errorf("TYPE/NAME needs one namespace: drop -A and use -n NAMESPACE")
	}
	if len(o.Refs) > 0 && o.Selector != "" {
		return fmt.Errorf("give TYPE/NAME or -l, not both")
	}
	for _, r := range o.Refs {
		if _, _, err := switcher.ParseRef(r); err != nil {
			return err
		}
	}
	if !o.Apply && (o.Yes || o.BackupDir != "" || o.DryRun != cmdutil.DryRunNone) {
		return fmt.Errorf("--yes, --backup-dir and --dry-run only make sense with --apply")
	}
	if o.DryRun != cmdutil.DryRunNone && o.BackupDir != "" {
		return fmt.Errorf("--dry-run changes nothing and writes no backup: drop --backup-dir")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	if err := o.writeFlags.validate(); err != nil {
		return err
	}
	if o.format() == "name" && !o.Apply {
		return fmt.Errorf("-o name lists what --apply changed; without --apply use -o yaml or -o json")
	}
	return nil
}

func (o *SwitchOptions) format() string { return outputFormat(o.PrintFlags) }

// Complete builds the printer first, so that a bad -o fails before the
// kubeconfig is read or anything is listed.
func (o *SwitchOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Refs = args
	if err := o.writeFlags.complete(cmd); err != nil {
		return usageErrorf("%w", err)
	}
	var err error
	if o.printer, err = toPrinter(o.PrintFlags, "name"); err != nil {
		return err
	}
	// --apply is refused over many clusters: changing many at once needs
	// its own design.
	if done, err := o.fleet.complete(f, cmd, map[string]string{
		"apply": "changing many clusters at once is not offered; run --apply with one --context at a time",
	}); done || err != nil {
		return err
	}
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Client == nil {
		// What nothing reads any more is judged with the readers of
		// every API (legacy.Unread).
		if o.Dynamic, err = f.DynamicClient(); err != nil {
			return usageErrorf("%w", err)
		}
	}
	o.Client, err = o.throttleFlags.client(f, o.Client)
	return err
}

func (o *SwitchOptions) options() switcher.Options {
	return switcher.Options{ExpirationSeconds: int64(o.Duration / time.Second), Audience: o.Audience,
		IncludeManaged: o.IncludeManaged, IncludeSystem: o.IncludeSystem}
}

func (o *SwitchOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.fleet.enabled() {
		return o.runFleet(ctx)
	}
	if err := o.unasked(o.Apply, o.Yes, o.In); err != nil {
		return err
	}
	if o.Apply && o.DryRun == cmdutil.DryRunNone {
		if err := switcher.CheckResume(o.BackupDir, o.options()); err != nil {
			return usageErrorf("%w", err)
		}
	}
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	plans, err := switcher.Find(ctx, workload.Clients{Kube: o.Client, Dynamic: o.Dynamic}, switcher.FindOptions{Namespace: ns, Refs: o.Refs, Selector: o.Selector, Warn: o.warn}, o.options())
	if err != nil {
		return usageErrorf("%w", err)
	}
	adviseHolds(plans)
	if !o.Apply {
		return o.printPlans(plans)
	}
	return o.runApply(ctx, plans)
}

func (o *SwitchOptions) printPlans(plans []*switcher.Plan) error {
	if p := o.printer; p != nil {
		n := 0
		for _, pl := range plans {
			if pl.Template == nil {
				continue
			}
			if err := p.PrintObj(pl.Manifest(), o.Out); err != nil {
				return err
			}
			n++
		}
		fmt.Fprintf(o.ErrOut, "%d manifest%s printed; %s.\n", n, text.Plural(n), planCounts(plans))
		return nil
	}
	if len(plans) == 0 {
		fmt.Fprintln(o.ErrOut, "No workload reads a legacy token Secret.")
		return nil
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(o.Out)
		}
		writePlan(o.Out, p)
	}
	fmt.Fprintf(o.ErrOut, "\n%d workload%s read legacy token Secrets: %s. Nothing was changed; --apply switches the switchable ones.\n", len(plans), text.Plural(len(plans)), planCounts(plans))
	return nil
}

func writePlan(w io.Writer, p *switcher.Plan) {
	fmt.Fprintf(w, "%s/%s -n %s: %s (reads %s)\n", workload.TypeName(p.Group, p.Kind), p.Name, p.Namespace, p.Verdict, strings.Join(p.Secrets, ", "))
	for _, r := range p.Reasons {
		fmt.Fprintf(w, "  reason: %s\n", r)
	}
	for _, x := range p.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", x)
	}
	if p.Diff != "" {
		fmt.Fprint(w, p.Diff)
	}
}

func planCounts(plans []*switcher.Plan) string {
	c := map[string]int{}
	for _, p := range plans {
		c[p.Verdict]++
	}
	return countsLine(c)
}

// adviseHolds ends each lifted-by-a-flag reason with the flag that lifts
// it; pkg/switcher words the reason without this command's flags.
func adviseHolds(plans []*switcher.Plan) {
	for _, p := range plans {
		for _, h := range p.Held {
			switch h.Rule {
			case switcher.HoldSystem:
				p.Reasons[h.Reason] += "; --include-system to switch it anyway"
			case switcher.HoldManaged:
				p.Reasons[h.Reason] += ", or --include-managed"
			}
		}
	}
}

// warn prints a warning on stderr, one line.
func (o *SwitchOptions) warn(msg string) { fmt.Fprintf(o.ErrOut, "warning: %s\n", msg) }
