package cmd

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	flag "github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
)

var (
	rotateLong = templates.LongDesc(`
		Change OpenShift's service-account issuer ('rotate issuer'), or rotate a
		HyperShift HostedCluster's signing key ('rotate hosted-cluster'), and follow the
		rollout.

		The earlier forms 'rotate --issuer URL', 'rotate --rollback --from FILE' and
		'rotate --hosted-cluster NAME' still work in this release, with a notice on
		stderr; they will be removed in the next one.`)

	rotateExample = templates.Examples(`
		# Change OpenShift's issuer, wait for the rollout, then restart workloads
		kubectl bound-token rotate issuer https://oidc.example.com/cluster-a --restart workloads --yes

		# Undo it from the backup written by the previous command
		kubectl bound-token rotate issuer --rollback --from authentication-cluster-20261123T080000Z.yaml --yes

		# Rotate a HostedCluster's signing key to a new RSA key and follow the rollout
		kubectl bound-token rotate hosted-cluster prod -n clusters`)
)

// NewCmdRotate is `rotate issuer` and `rotate hosted-cluster`. Run without a
// subcommand it takes the flags of the earlier single command, hidden, for
// one release: it prints a deprecation notice naming the new form and runs
// the subcommand's Options with the same values.
func NewCmdRotate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	issuerCmd := NewCmdRotateIssuer(f, streams)
	hostedCmd := NewCmdRotateHostedCluster(f, streams)
	iss := NewRotateIssuerOptions(streams)
	hc := NewRotateHostedClusterOptions(streams)
	// The flags both subcommands have, bound once and handed to the one
	// that runs.
	common := newRotateOptions(streams)
	var issuer, hosted string
	cmd := &cobra.Command{
		Use:                   "rotate (issuer | hosted-cluster)",
		DisableFlagsInUseLine: true,
		Short:                 "Change the OpenShift issuer or rotate a HyperShift signing key, and follow the rollout",
		Long:                  rotateLong,
		Example:               rotateExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				o                commandOptions
				sub              *cobra.Command
				oldForm, newForm string
				subArgs          []string
			)
			switch {
			case hosted != "":
				hc.rotateOptions, hc.Issuer = common, issuer
				o, sub, subArgs = hc, hostedCmd, []string{hosted}
				oldForm, newForm = "rotate --hosted-cluster NAME", "rotate hosted-cluster NAME"
			case issuer != "" || iss.Rollback:
				iss.rotateOptions = common
				o, sub = iss, issuerCmd
				oldForm, newForm = "rotate --issuer URL", "rotate issuer URL"
				if iss.Rollback {
					oldForm, newForm = "rotate --rollback --from FILE", "rotate issuer --rollback --from FILE"
				}
				if issuer != "" {
					subArgs = []string{issuer}
				}
			default:
				return usageErrorf("say what to rotate: 'rotate issuer URL', 'rotate issuer --rollback --from FILE' or 'rotate hosted-cluster NAME'; see '%s --help'", cmd.CommandPath())
			}
			if err := strayRotateFlag(cmd, sub); err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "warning: 'kubectl bound-token %s' is deprecated and will be removed in the next release; use 'kubectl bound-token %s'\n", oldForm, newForm)
			return runOptions(o, f, cmd, subArgs)
		},
	}
	// The earlier command's flags, hidden: the subcommands document them.
	fl := cmd.Flags()
	iss.addFlags(fl)
	hc.addFlags(fl)
	fl.StringVar(&issuer, "issuer", "", "Deprecated: use 'rotate issuer URL'.")
	fl.StringVar(&hosted, "hosted-cluster", "", "Deprecated: use 'rotate hosted-cluster NAME'.")
	_ = cmd.RegisterFlagCompletionFunc("hosted-cluster", completeFirstArgNames(f, hostedClusterNames))
	common.addSharedFlags(cmd, "How long to wait for the rollout.", "Do not ask for confirmation.")
	iss.registerCompletions(f, cmd)
	hc.registerCompletions(cmd)
	// -h too, so that the help shows no empty Options section.
	fl.BoolP("help", "h", false, "help for rotate")
	fl.VisitAll(func(fl *flag.Flag) { fl.Hidden = true })
	cmd.AddCommand(issuerCmd, hostedCmd)
	return cmd
}

// strayRotateFlag refuses a flag given to the deprecated form cmd that
// sub, the subcommand it stands for, does not have.
func strayRotateFlag(cmd, sub *cobra.Command) error {
	var stray error
	cmd.Flags().Visit(func(fl *flag.Flag) {
		if cmd.LocalFlags().Lookup(fl.Name) == nil {
			return // a global flag
		}
		// --issuer is the URL or, with --hosted-cluster, the
		// issuerURL to insist on.
		known := fl.Name == "hosted-cluster" || fl.Name == "issuer"
		if stray == nil && !known && sub.Flags().Lookup(fl.Name) == nil {
			stray = usageErrorf("--%s is not a flag of '%s'", fl.Name, sub.CommandPath())
		}
	})
	return stray
}

// rotateOptions is what `rotate issuer` and `rotate hosted-cluster` share:
// --yes, --timeout, --dry-run and -o, the clients, and how a rotation
// asks, follows, reports a dry run and prints its result. Both
// subcommands' Options embed it; the deprecated form binds one to its
// flags and hands it to the subcommand it runs.
type rotateOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Yes            bool
	Timeout        time.Duration
	DryRunStrategy cmdutil.DryRunStrategy

	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Now     func() time.Time
	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func newRotateOptions(streams genericiooptions.IOStreams) rotateOptions {
	return rotateOptions{PrintFlags: newResultPrintFlags(), Timeout: 30 * time.Minute, Now: time.Now, IOStreams: streams}
}

// rotateCommand is a rotate subcommand's Options.
type rotateCommand interface {
	commandOptions
	shared() *rotateOptions
	// addFlags adds the subcommand's own flags (the deprecated form adds
	// them too).
	addFlags(*flag.FlagSet)
}

func (o *rotateOptions) shared() *rotateOptions { return o }

// newRotateCommand completes cmd, a rotate subcommand, to run o, with the
// flags every rotation has and o's own. timeoutUsage and yesUsage say what
// the wait's end and a missing --yes mean for this rotation.
func newRotateCommand(f cmdutil.Factory, o rotateCommand, cmd *cobra.Command, timeoutUsage, yesUsage string) *cobra.Command {
	cmd.DisableFlagsInUseLine = true
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runOptions(o, f, cmd, args)
	}
	o.addFlags(cmd.Flags())
	o.shared().addSharedFlags(cmd, timeoutUsage, yesUsage)
	return cmd
}

// addSharedFlags adds --timeout, --yes, --dry-run and -o.
func (o *rotateOptions) addSharedFlags(cmd *cobra.Command, timeoutUsage, yesUsage string) {
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, timeoutUsage)
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, yesUsage)
	addDryRunFlag(cmd)
	addPrintFlags(cmd, o.PrintFlags)
}

// complete is the Complete every rotation shares: the positional
// argument into arg; --dry-run and -o, so that a bad value of either fails
// before anything is read; the kubeconfig's namespace into namespace, when
// not nil; the clients.
func (o *rotateOptions) complete(f cmdutil.Factory, cmd *cobra.Command, args []string, arg, namespace *string) error {
	if len(args) == 1 {
		*arg = args[0]
	}
	var err error
	if o.DryRunStrategy, err = cmdutil.GetDryRunStrategy(cmd); err != nil {
		return err
	}
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if namespace != nil {
		if *namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
			return err
		}
	}
	o.Client, o.Dynamic, err = clients(f)
	return err
}

// dryRun reports whether --dry-run is client or server: nothing is changed.
func (o *rotateOptions) dryRun() bool { return o.DryRunStrategy != cmdutil.DryRunNone }

// sayDryRun says on stderr what the dry run would have done, naming it as
// --dry-run does.
func (o *rotateOptions) sayDryRun(format string, a ...any) {
	fmt.Fprintf(o.ErrOut, "dry run (%s): %s\n", kubeapi.DryRunName(o.DryRunStrategy), fmt.Sprintf(format, a...))
}

// confirmed is a rotation's answer to "Proceed?" (see confirmed).
func (o *rotateOptions) confirmed(refusal string, show func()) (bool, error) {
	return confirmed(o.Yes, o.In, o.ErrOut, refusal, show)
}

// progressLine prints a line of a rotation's progress on stderr, on a
// terminal only, so that logs stay clean.
func (o *rotateOptions) progressLine() func(string) {
	if !isTerminal(o.ErrOut) {
		return func(string) {}
	}
	return func(s string) { fmt.Fprintln(o.ErrOut, s) }
}

// output prints a rotation's result as -o asks (kind is its kind), or else
// the command's plain line (plain, when not nil).
func (o *rotateOptions) output(kind string, res runtime.Object, plain func()) error {
	if o.printer != nil {
		return printResult(o.printer, kind, res, o.Out)
	}
	if plain != nil {
		plain()
	}
	return nil
}

// confirmationExitError maps how a rotation's confirmation stopped it: a
// no (kubeapi.ErrNotConfirmed) is exit 1; the question's own error (no
// --yes and no terminal to ask on) keeps its code. ok is false for every
// other error, which the rotation's own mapping handles.
func confirmationExitError(err error) (exit error, ok bool) {
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		return err, true
	case errors.Is(err, kubeapi.ErrNotConfirmed):
		return failedErrorf("%w", err), true
	}
	return nil, false
}
