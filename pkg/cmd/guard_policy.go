package cmd

import (
	"context"
	"errors"
	"fmt"
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
)

// The guard inside kube-apiserver: guard install, status and uninstall.
// The policy, the proof and the counts are pkg/guard's; these files are
// flags, questions and printing (guard_status.go, guard_uninstall.go).

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

// guardPolicyOptions is what `guard install`, `guard status` and `guard
// uninstall` share: -o, --dry-run (where the command has it), the
// namespace of the proof and the cluster.
type guardPolicyOptions struct {
	PrintFlags     *genericclioptions.PrintFlags
	DryRunStrategy cmdutil.DryRunStrategy

	Namespace string
	Cluster   *guard.Cluster
	printer   printers.ResourcePrinter
	genericiooptions.IOStreams
}

// complete reads --dry-run and -o, then (validate checking the flags alone
// before the kubeconfig is read) the namespace when withNamespace, and
// builds the cluster's clients; a client dry run needs no cluster.
func (g *guardPolicyOptions) complete(f cmdutil.Factory, cmd *cobra.Command, validate func() error, withNamespace bool) error {
	var err error
	if cmd.Flags().Lookup("dry-run") != nil {
		if g.DryRunStrategy, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
			return err
		}
	}
	if g.printer, err = toPrinter(g.PrintFlags); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return err
	}
	if g.DryRunStrategy == cmdutil.DryRunClient {
		// No cluster: the objects are printed as written.
		return nil
	}
	if withNamespace {
		if g.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
			return err
		}
	}
	g.Cluster, err = guardCluster(f)
	return err
}

// GuardInstallOptions holds what `guard install` needs.
type GuardInstallOptions struct {
	PolicyAPIVersion string
	Yes              bool
	Timeout          time.Duration
	guardPolicyOptions
}

func NewCmdGuardInstall(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GuardInstallOptions{Timeout: 30 * time.Second, guardPolicyOptions: guardPolicyOptions{PrintFlags: genericclioptions.NewPrintFlags(""), IOStreams: streams}}
	cmd := &cobra.Command{
		Use:                   "install [--yes] [--dry-run=client|server [-o yaml]] [--policy-api-version v1|v1beta1]",
		DisableFlagsInUseLine: true,
		Short:                 "Install the guard inside kube-apiserver (a MutatingAdmissionPolicy) and prove it acts",
		Long:                  guardInstallLong,
		Example:               guardInstallExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
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
	return o.complete(f, cmd, o.Validate, true)
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
	return confirmed(o.Yes, o.In, o.ErrOut, "installing the guard adds an admission policy to kube-apiserver; add --yes to confirm (stdin is not a terminal to ask on); nothing changed", func() {
		fmt.Fprintf(o.ErrOut, "%s MutatingAdmissionPolicy %s and %s MutatingAdmissionPolicyBinding %s (%s/%s).\n", p.Policy, guard.PolicyName, p.Binding, guard.BindingName, guard.Group, p.Version)
		fmt.Fprintln(o.ErrOut, "kube-apiserver will then restore, at its first rejected use, a legacy token Secret that migrate --apply invalidated for clean-up,\n"+
			"up to its guard day: whoever holds such a token re-enables it by presenting it.")
	})
}

// proofText is one line on a proof that was made.
func proofText(p *guard.Proof) string {
	s := "kube-apiserver's own last-used patch (dryRun=All, as " + guard.APIServerUser + ") on Secret " + p.Secret
	if p.Throwaway {
		s += " (a throwaway, deleted)"
	}
	return s + " came back restored"
}

// objectList is objects as a v1 List, as kubectl prints several objects.
func objectList(objs ...runtime.Object) runtime.Object {
	l := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for _, o := range objs {
		l.Items = append(l.Items, runtime.RawExtension{Object: o})
	}
	return l
}
