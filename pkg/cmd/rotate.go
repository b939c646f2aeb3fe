package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	flag "github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
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
	var (
		issuer, hosted string
		timeout        = 30 * time.Minute
	)
	pf := newResultPrintFlags()
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
				hc.PrintFlags, hc.Issuer, hc.Timeout, hc.Yes = pf, issuer, timeout, iss.Yes
				o, sub, subArgs = hc, hostedCmd, []string{hosted}
				oldForm, newForm = "rotate --hosted-cluster NAME", "rotate hosted-cluster NAME"
			case issuer != "" || iss.Rollback:
				iss.PrintFlags, iss.Timeout = pf, timeout
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
			if stray != nil {
				return stray
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
	fl.DurationVar(&timeout, "timeout", timeout, "How long to wait for the rollout.")
	addDryRunFlag(cmd)
	addPrintFlags(cmd, pf)
	iss.registerCompletions(f, cmd)
	hc.registerCompletions(cmd)
	// -h too, so that the help shows no empty Options section.
	fl.BoolP("help", "h", false, "help for rotate")
	fl.VisitAll(func(fl *flag.Flag) { fl.Hidden = true })
	cmd.AddCommand(issuerCmd, hostedCmd)
	return cmd
}
