// Package cmd is the command layer of kubectl bound-token: flags, Complete,
// Validate and printing. Behaviour lives in the domain packages under pkg/.
//
// Nothing under pkg/ may import it: it is the top of the tree, and only
// cmd/ (main), hack/gendocs and the e2e framework build on it.
package cmd

import (
	"flag"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec, OIDC and cloud auth providers in kubeconfigs
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/kuberc"
	"github.com/bound-token/kubectl-bound-token/pkg/redact"
)

var rootLong = templates.LongDesc(`
	Create, inspect and verify bound ServiceAccount tokens, and move a cluster off
	legacy token Secrets.

	Bound tokens are minted through the TokenRequest API: they carry audiences,
	expire, and can be tied to a Pod, Secret or Node so that they die with it.
	Legacy token Secrets never expire and stay valid until they are deleted.

	create, decode and verify work with single tokens. migrate audits the legacy
	token Secrets and, with --apply, backs up and invalidates the provably unused
	ones; restore brings them back. keys and oidc publish a self-hosted issuer's
	keys and discovery document; doctor checks the whole token setup. rotate changes
	OpenShift's issuer or a HyperShift signing key, and wait follows the rollout.`) + "\n\n" + rootExitCodes

// rootExitCodes stays out of LongDesc, which would fold the table into one
// line. After a blank line and indented by four spaces, it is also a code
// block in the markdown reference.
const rootExitCodes = `Exit codes:

    0  success: token verified, every item done
    1  the answer is no: a token was rejected, or at least one item failed
    2  nothing was checked or changed: bad flags or input, unreadable files,
       unreachable cluster or keys`

// NewCmdBoundToken builds the root command with kubeconfig flags shared by
// every subcommand.
func NewCmdBoundToken(streams genericiooptions.IOStreams) *cobra.Command {
	configFlags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "bound-token",
		Short: "Create, inspect and verify bound ServiceAccount tokens, and move a cluster off legacy token Secrets",
		Long:  rootLong,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl bound-token",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		Run: func(cmd *cobra.Command, args []string) {
			_ = cmd.Help()
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	configFlags.AddFlags(root.PersistentFlags())
	addKubercFlag(root, configFlags, streams)
	// Server warnings once each on stderr, as kubectl shows them, not once
	// per request through klog: a batch of thousands of requests would
	// repeat the same line thousands of times.
	rest.SetDefaultWarningHandler(rest.NewWarningWriter(streams.ErrOut, rest.WarningWriterOptions{Deduplicate: true}))
	addLogFlags(root)

	f := cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(configFlags))

	groups := commandGroups(f, streams)
	groups.Add(root)
	root.AddCommand(NewCmdVersion(f, streams))
	root.AddCommand(newCmdOptions(streams))
	// In the tree up front (cobra would add it lazily) so docs list it.
	root.InitDefaultCompletionCmd()
	registerGlobalCompletions(root, f)
	templates.ActsAsRootCommand(root, []string{"options"}, groups...)
	useDisplayNameInUsage(root, []string{"options"}, groups)
	// Flag errors are usage errors (exit 2), with kubectl's hint appended.
	root.SetFlagErrorFunc(flagError)
	return root
}

// commandGroups are the root's commands, as its help lists them.
func commandGroups(f cmdutil.Factory, streams genericiooptions.IOStreams) templates.CommandGroups {
	group := func(message string, cmds ...*cobra.Command) templates.CommandGroup {
		return templates.CommandGroup{Message: message, Commands: cmds}
	}
	return templates.CommandGroups{
		group("Token commands:", NewCmdCreate(f, streams), NewCmdDecode(f, streams), NewCmdVerify(f, streams)),
		group("Migration commands:", NewCmdMigrate(f, streams), NewCmdGuard(f, streams), NewCmdSwitch(f, streams), NewCmdRestore(f, streams)),
		group("Issuer commands:", NewCmdKeys(f, streams), NewCmdOIDC(f, streams), NewCmdDoctor(f, streams)),
		group("Rotation commands:", NewCmdWait(f, streams), NewCmdRotate(f, streams)),
	}
}

// registerGlobalCompletions completes the kubeconfig flags as kubectl does.
func registerGlobalCompletions(root *cobra.Command, f cmdutil.Factory) {
	_ = root.RegisterFlagCompletionFunc("namespace", completeNames(f, namespaceNames))
	_ = root.RegisterFlagCompletionFunc("context", completeKubeconfig(f, kubeconfigContexts))
	_ = root.RegisterFlagCompletionFunc("cluster", completeKubeconfig(f, kubeconfigClusters))
	_ = root.RegisterFlagCompletionFunc("user", completeKubeconfig(f, kubeconfigUsers))
}

// newCmdOptions mirrors `kubectl options`: global flags are listed there so
// every command's help stays short.
func newCmdOptions(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "options",
		Short: "Print the list of flags inherited by all commands",
		Example: templates.Examples(`
			# Print flags inherited by all commands
			kubectl bound-token options`),
		Run: func(cmd *cobra.Command, args []string) {
			_ = cmd.Usage()
		},
	}
	templates.UseOptionsTemplates(cmd)
	return cmd
}

// exactArgs and friends turn cobra's argument errors into usage errors.
func argsUsage(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageErrorf("%v; see '%s --help' for usage", err, cmd.CommandPath())
		}
		return nil
	}
}

// addKubercFlag adds kubectl's --kuberc and makes the credential plugin
// policy of the user's kuberc (pkg/kuberc) govern every client the
// factory builds: it is read before any command runs, so a kuberc kubectl
// would refuse is refused here too (exit 2, nothing done), and applied to
// each rest.Config through WrapConfigFn, as kubectl's own
// (*Preferences).applyPluginPolicy does (k8s.io/kubectl/pkg/kuberc).
func addKubercFlag(root *cobra.Command, configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) {
	var path string
	var policy clientcmdapi.PluginPolicy
	root.PersistentFlags().StringVar(&path, "kuberc", "", "Path to the kubectl preferences file (kuberc) whose credentialPluginPolicy and credentialPluginAllowlist govern exec credential plugins, as in kubectl; default $KUBERC, else ~/.kube/kuberc. KUBERC=off ignores it.")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		p, err := kuberc.Policy(path, streams.ErrOut)
		if err != nil {
			return usageErrorf("%w", err)
		}
		policy = p
		return nil
	}
	configFlags.WithWrapConfigFn(func(c *rest.Config) *rest.Config { return kuberc.Apply(c, policy) })
}

// credentialPluginPolicy is the kuberc policy for clients the factory does
// not build (a fleet's contexts). The root's PersistentPreRunE has read the
// same file already and printed its warnings, so they are not repeated.
func credentialPluginPolicy(cmd *cobra.Command) (clientcmdapi.PluginPolicy, error) {
	path := ""
	if f := cmd.Flag("kuberc"); f != nil {
		path = f.Value.String()
	}
	return kuberc.Policy(path, io.Discard)
}

// addLogFlags adds kubectl's -v and --vmodule. From -v=8 client-go logs
// request and response bodies, which carry tokens (TokenRequest answers,
// TokenReview requests) and Secret data: every log line goes through
// redact.Filter first.
func addLogFlags(root *cobra.Command) {
	klog.SetLogFilter(redact.Filter{})
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for _, name := range []string{"v", "vmodule"} {
		root.PersistentFlags().AddGoFlag(fs.Lookup(name))
	}
	root.PersistentFlags().Lookup("v").Usage = "Log verbosity, as in kubectl; 6 shows API calls, 8 and up their bodies, with tokens, private keys and Secret data redacted."
}
