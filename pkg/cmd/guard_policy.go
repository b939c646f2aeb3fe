package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
)

// The guard inside kube-apiserver: guard install, status and uninstall.
// The policy, the proof and the counts are pkg/guard's; this file is
// flags, questions and printing.

const (
	// GuardStatusKind and GuardUninstallKind are the kinds of -o output.
	GuardStatusKind    = "GuardStatus"
	GuardUninstallKind = "GuardUninstall"
)

var (
	guardInstallLong = templates.LongDesc(`
		Install the guard inside kube-apiserver: a MutatingAdmissionPolicy and its binding,
		both named ` + guard.PolicyName + `. When kube-apiserver rejects a legacy token whose
		Secret migrate --apply invalidated for clean-up, it writes the Secret's last-used
		label as user system:apiserver; the policy removes the invalid-since label in that
		same write and records the restore (annotations bound-token.kubectl.io/restored-on-use
		and restored-by). The client sees one rejected request; its next one is accepted.

		Only Secrets this tool invalidated for clean-up (annotation
		bound-token.kubectl.io/invalidated-for=clean-up) are guarded, and only up to their
		guard day (label bound-token.kubectl.io/guard-until, compared with the day
		kube-apiserver writes). Secrets invalidated by kube-controller-manager's cleaner, by
		hand, or as a revocation are never touched. A guard is for clean-up, never for
		revocation: whoever holds a guarded token can re-enable it by presenting it.

		The policy's failurePolicy is Ignore: it must never block kube-apiserver's own write
		(the reason is written in an annotation on the policy). It is written through
		admissionregistration.k8s.io/v1 where served (Kubernetes 1.36+), else v1beta1
		(1.34 and 1.35 serve it only with the MutatingAdmissionPolicy feature gate together
		with --runtime-config=admissionregistration.k8s.io/v1beta1=true).

		Served is not enforced: the admission plugin can be disabled. So install then waits
		(--timeout) until the policy acts, proved as guard status proves it, and exit 1 says
		it did not. Each kube-apiserver loads the policy itself; the proof reaches one.

		--dry-run=client -o yaml prints the two objects without contacting a cluster, for
		GitOps: as admissionregistration.k8s.io/v1 unless --policy-api-version v1beta1.
		--dry-run=server has the apiserver validate them (their CEL compiled) and store
		nothing. It asks before changing the cluster on a terminal; scripts add --yes.

		Exit codes: 0 installed (or already current) and proved acting, or installed with the
		proof impossible (said on stderr: you may not impersonate system:apiserver); 1 not
		served, not confirmed, an object of that name that this tool did not write, or
		installed but not acting within --timeout; 2 bad flags, no --yes without a
		terminal, or an unreachable cluster.`)

	guardInstallExample = templates.Examples(`
		# Install the guard and wait until it acts
		kubectl bound-token guard install

		# In a script
		kubectl bound-token guard install --yes

		# The objects for a GitOps repository, without a cluster (v1; v1beta1 for 1.34/1.35)
		kubectl bound-token guard install --dry-run=client -o yaml > guard.yaml
		kubectl bound-token guard install --dry-run=client -o yaml --policy-api-version v1beta1

		# Have the apiserver check the objects, store nothing
		kubectl bound-token guard install --dry-run=server`)

	guardStatusLong = templates.LongDesc(`
		Say whether the guard is installed, prove whether it acts, and count the legacy token
		Secrets it guards (invalid, with a guard day) and the ones a guard restored.

		The proof sends kube-apiserver's own last-used patch, byte for byte, as
		kube-apiserver's identity (impersonating user system:apiserver in group
		system:masters) with dryRun=All, to a Secret the policy must restore, and reads the
		answer: restored means acting. Nothing is stored. It needs the right to impersonate
		them (checked by SelfSubjectAccessReview first); without it the answer is "unproven".
		The patch goes to a legacy token Secret this tool invalidated for clean-up; when
		there is none, to a throwaway Secret (Opaque, no data, labelled
		bound-token.kubectl.io/guard-probe) created in the namespace (-n) and deleted right
		after; --throwaway=false says "unproven" instead.

		Exit codes: 0 installed and acting, or installed and unproven (said on stderr);
		1 not installed, or installed and not acting; 2 bad flags or an unreachable cluster.`)

	guardStatusExample = templates.Examples(`
		# Is the guard installed, and does it act?
		kubectl bound-token guard status

		# Without creating a throwaway Secret for the proof
		kubectl bound-token guard status --throwaway=false

		# As JSON: the proof's state and the counts
		kubectl bound-token guard status -o jsonpath='{.proof.state} {.counts.guarded}'`)

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

// guardCluster builds pkg/guard's clients from the factory.
func guardCluster(f cmdutil.Factory) (*guard.Cluster, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return guard.NewCluster(cfg)
}

// guardError maps pkg/guard's errors to exit codes (a refusal, a "no" or
// a failed write is 1; an error that already has a code keeps it), with
// the advice that names this tool's commands.
func guardError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case clusterUnreachable(err):
		return usageErrorf("%w", unreachable(err, what))
	case errors.Is(err, guard.ErrNotServed):
		return failedErrorf("%w; or guard without it: kubectl bound-token guard watch", err)
	}
	return failedErrorf("%w", err)
}

// GuardInstallOptions holds what `guard install` needs.
type GuardInstallOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	PolicyAPIVersion string
	Yes              bool
	Timeout          time.Duration
	DryRunStrategy   cmdutil.DryRunStrategy

	Namespace string
	Cluster   *guard.Cluster
	printer   printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewCmdGuardInstall(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GuardInstallOptions{PrintFlags: genericclioptions.NewPrintFlags(""), Timeout: 30 * time.Second, IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "install [--yes] [--dry-run=client|server [-o yaml]] [--policy-api-version v1|v1beta1]",
		DisableFlagsInUseLine: true,
		Short:                 "Install the guard inside kube-apiserver (a MutatingAdmissionPolicy) and prove it acts",
		Long:                  guardInstallLong,
		Example:               guardInstallExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOptions(o, f, cmd, args)
		},
	}
	cmd.Flags().StringVar(&o.PolicyAPIVersion, "policy-api-version", "", "admissionregistration.k8s.io version to write the objects in: "+strings.Join(guard.Versions, " or ")+
		" (default: the newest the cluster serves; with --dry-run=client, "+guard.DefaultVersion+").")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Do not ask for confirmation (needed when stdin is not a terminal).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait until the installed policy is proved to act (exit 1 after).")
	addDryRunFlag(cmd)
	addPrintFlags(cmd, o.PrintFlags)
	_ = cmd.RegisterFlagCompletionFunc("policy-api-version", cobra.FixedCompletions(guard.Versions, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *GuardInstallOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	var err error
	if o.DryRunStrategy, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return err
	}
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	// The flags alone are checked before the kubeconfig is read.
	if err := o.Validate(); err != nil {
		return err
	}
	if o.DryRunStrategy == cmdutil.DryRunClient {
		// No cluster: the objects are printed as written.
		return nil
	}
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	o.Cluster, err = guardCluster(f)
	return err
}

func (o *GuardInstallOptions) Validate() error {
	if v := o.PolicyAPIVersion; v != "" && v != guard.VersionV1 && v != guard.VersionV1beta1 {
		return fmt.Errorf("--policy-api-version %q: use %s", v, strings.Join(guard.Versions, " or "))
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout must not be negative")
	}
	return nil
}

func (o *GuardInstallOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.DryRunStrategy == cmdutil.DryRunClient {
		version := o.PolicyAPIVersion
		if version == "" {
			version = guard.DefaultVersion
		}
		if o.printer != nil {
			return o.printObjects(version)
		}
		fmt.Fprintf(o.Out, "mutatingadmissionpolicy.%s/%s created (dry run)\nmutatingadmissionpolicybinding.%s/%s created (dry run)\n", guard.Group, guard.PolicyName, guard.Group, guard.BindingName)
		fmt.Fprintf(o.ErrOut, "dry run (client): %s/%s, nothing sent; -o yaml prints the objects\n", guard.Group, version)
		return nil
	}
	res, err := guard.Install(ctx, o.Cluster, guard.InstallOptions{
		Version: o.PolicyAPIVersion,
		DryRun:  o.DryRunStrategy,
		Confirm: o.confirm,
		Prove:   guard.ProveOptions{Throwaway: true, Namespace: o.Namespace, Wait: o.Timeout},
	})
	if err != nil {
		return guardError(err, "nothing was installed")
	}
	suffix := ""
	if res.DryRun {
		suffix = " (server dry run)"
	}
	if o.printer != nil {
		if err := o.printObjects(res.Version); err != nil {
			return err
		}
	} else {
		past := map[string]string{guard.ActionCreate: "created", guard.ActionUpdate: "configured", guard.ActionUnchanged: "unchanged"}
		fmt.Fprintf(o.Out, "mutatingadmissionpolicy.%s/%s %s%s\n", guard.Group, guard.PolicyName, past[res.Policy], suffix)
		fmt.Fprintf(o.Out, "mutatingadmissionpolicybinding.%s/%s %s%s\n", guard.Group, guard.BindingName, past[res.Binding], suffix)
	}
	if res.Proof == nil {
		fmt.Fprintf(o.ErrOut, "dry run (server): the apiserver accepted both objects through %s/%s; nothing was stored\n", guard.Group, res.Version)
		return nil
	}
	switch p := res.Proof; p.State {
	case guard.Acting:
		fmt.Fprintf(o.ErrOut, "the guard acts: %s\n", proofText(p))
		return nil
	case guard.NotActing:
		return failedErrorf("the guard is installed (%s/%s) but does not act: %s; kubectl bound-token guard status checks again, guard uninstall removes it", guard.Group, res.Version, p.Reason)
	default:
		fmt.Fprintf(o.ErrOut, "warning: the guard is installed (%s/%s); whether it acts is unproven: %s\n", guard.Group, res.Version, p.Reason)
		return nil
	}
}

// printObjects prints the policy and its binding: YAML (and names) as two
// documents, the other formats as one List.
func (o *GuardInstallOptions) printObjects(version string) error {
	p, b, err := guard.Objects(version)
	if err != nil {
		return usageErrorf("%w", err)
	}
	switch f := outputFormat(o.PrintFlags); {
	case f == "yaml" || f == "kyaml" || f == "name":
		if err := o.printer.PrintObj(p, o.Out); err != nil {
			return err
		}
		return o.printer.PrintObj(b, o.Out)
	}
	return o.printer.PrintObj(objectList(p, b), o.Out)
}

// confirm shows the plan and asks on a terminal; a script must say --yes.
func (o *GuardInstallOptions) confirm(p guard.Plan) (bool, error) {
	if o.Yes {
		return true, nil
	}
	if !isTerminal(o.In) {
		return false, usageErrorf("installing the guard adds an admission policy to kube-apiserver; add --yes to confirm (stdin is not a terminal to ask on); nothing changed")
	}
	fmt.Fprintf(o.ErrOut, "%s MutatingAdmissionPolicy %s and %s MutatingAdmissionPolicyBinding %s (%s/%s).\n", p.Policy, guard.PolicyName, p.Binding, guard.BindingName, guard.Group, p.Version)
	fmt.Fprintln(o.ErrOut, "kube-apiserver will then restore, at its first rejected use, a legacy token Secret that migrate --apply invalidated for clean-up,\n"+
		"up to its guard day: whoever holds such a token re-enables it by presenting it.")
	return confirm(o.In, o.ErrOut, "Proceed?"), nil
}

// proofText is one line on a proof that was made.
func proofText(p *guard.Proof) string {
	s := "kube-apiserver's own last-used patch (dryRun=All, as " + guard.APIServerUser + ") on Secret " + p.Secret
	if p.Throwaway {
		s += " (a throwaway, deleted)"
	}
	return s + " came back restored"
}

// GuardStatusOptions holds what `guard status` needs.
type GuardStatusOptions struct {
	PrintFlags *genericclioptions.PrintFlags
	Throwaway  bool

	Namespace string
	Cluster   *guard.Cluster
	printer   printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewCmdGuardStatus(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GuardStatusOptions{PrintFlags: newResultPrintFlags(), Throwaway: true, IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "status [--throwaway=false] [-o json|yaml|jsonpath=...]",
		DisableFlagsInUseLine: true,
		Short:                 "Say whether the guard is installed, prove it acts, count guarded and restored Secrets",
		Long:                  guardStatusLong,
		Example:               guardStatusExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOptions(o, f, cmd, args)
		},
	}
	cmd.Flags().BoolVar(&o.Throwaway, "throwaway", o.Throwaway, "When no Secret this tool invalidated can carry the proof, create an empty Secret in the namespace for it and delete it after (false: unproven).")
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func (o *GuardStatusOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	o.Cluster, err = guardCluster(f)
	return err
}

func (o *GuardStatusOptions) Validate() error { return nil }

func (o *GuardStatusOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := guard.Status(ctx, o.Cluster, guard.StatusOptions{Prove: guard.ProveOptions{Throwaway: o.Throwaway, Namespace: o.Namespace}})
	if err != nil {
		if clusterUnreachable(err) {
			return usageErrorf("%w", unreachable(err, "nothing was checked"))
		}
		return failedErrorf("%w", err)
	}
	if o.printer != nil {
		if err := o.printer.PrintObj(newResult(GuardStatusKind, res), o.Out); err != nil {
			return err
		}
	} else {
		writeGuardStatus(o.Out, res)
	}
	switch {
	case !res.Installed:
		return silent(ExitFailed)
	case res.Proof.State == guard.NotActing:
		return silent(ExitFailed)
	case res.Proof.State == guard.Unproven && o.printer != nil:
		fmt.Fprintf(o.ErrOut, "warning: whether the guard acts is unproven: %s\n", res.Proof.Reason)
	}
	return nil
}

func writeGuardStatus(w io.Writer, r *guard.StatusResult) {
	fmt.Fprintf(w, "guard:     %s\n", r.Describe())
	if !r.Installed {
		if r.ServedVersion != "" && r.Policy != guard.ObjectForeign && r.Binding != guard.ObjectForeign {
			fmt.Fprintln(w, "fix:       kubectl bound-token guard install")
		} else {
			fmt.Fprintln(w, "fix:       kubectl bound-token guard watch (runs beside the cluster)")
		}
	} else {
		if !r.Current {
			fmt.Fprintln(w, "update:    kubectl bound-token guard install")
		}
		switch p := r.Proof; p.State {
		case guard.Acting:
			fmt.Fprintf(w, "acting:    yes, proved: %s\n", proofText(p))
		case guard.NotActing:
			fmt.Fprintf(w, "acting:    NO: %s\n", p.Reason)
		default:
			fmt.Fprintf(w, "acting:    unproven: %s\n", p.Reason)
		}
	}
	if r.Counts == nil {
		fmt.Fprintf(w, "guarded:   unknown: %s\n", text.OneLine(r.CountError, 300))
		return
	}
	fmt.Fprintf(w, "guarded:   %d legacy token Secret%s invalid with a guard day\n", r.Counts.Guarded, text.Plural(r.Counts.Guarded))
	fmt.Fprintf(w, "restored:  %d", r.Counts.Restored)
	if len(r.Counts.RestoredBy) > 0 {
		var by []string
		for _, k := range []string{"admission-policy", "guard-watch"} {
			if n := r.Counts.RestoredBy[k]; n > 0 {
				by = append(by, fmt.Sprintf("%d by %s", n, k))
			}
		}
		if len(by) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
		}
	}
	fmt.Fprintln(w)
}

// GuardUninstallOptions holds what `guard uninstall` needs.
type GuardUninstallOptions struct {
	PrintFlags     *genericclioptions.PrintFlags
	Yes            bool
	DryRunStrategy cmdutil.DryRunStrategy

	Cluster *guard.Cluster
	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewCmdGuardUninstall(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GuardUninstallOptions{PrintFlags: newResultPrintFlags(), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "uninstall [--yes] [--dry-run=server]",
		DisableFlagsInUseLine: true,
		Short:                 "Delete the guard's MutatingAdmissionPolicy and binding",
		Long:                  guardUninstallLong,
		Example:               guardUninstallExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOptions(o, f, cmd, args)
		},
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Do not ask for confirmation (needed when stdin is not a terminal).")
	addDryRunFlag(cmd)
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func (o *GuardUninstallOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	var err error
	if o.DryRunStrategy, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return err
	}
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	// The flags alone are checked before the kubeconfig is read.
	if err := o.Validate(); err != nil {
		return err
	}
	o.Cluster, err = guardCluster(f)
	return err
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
	if o.Yes {
		return true, nil
	}
	if !isTerminal(o.In) {
		return false, usageErrorf("uninstalling the guard deletes an admission policy from kube-apiserver; add --yes to confirm (stdin is not a terminal to ask on); nothing changed")
	}
	fmt.Fprintf(o.ErrOut, "delete MutatingAdmissionPolicyBinding and MutatingAdmissionPolicy %s (%s/%s): invalidated Secrets are no longer restored at their first use.\n", guard.PolicyName, guard.Group, p.Version)
	return confirm(o.In, o.ErrOut, "Proceed?"), nil
}

// objectList is objects as a v1 List, as kubectl prints several objects.
func objectList(objs ...runtime.Object) runtime.Object {
	l := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for _, o := range objs {
		l.Items = append(l.Items, runtime.RawExtension{Object: o})
	}
	return l
}
