package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/scheme"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/tokens"
)

var (
	createLong = templates.LongDesc(`
		Create bound ServiceAccount tokens through the TokenRequest API.

		A bound token has audiences and an expiry, and can be tied to a Pod, Secret or
		Node: it stops working when that object is deleted. The server decides the final
		lifetime (--service-account-max-token-expiration caps it); the real expiry is
		printed on stderr.

		With one ServiceAccount the bare token is printed, with a trailing newline only on
		a terminal. With several (names, -l or -A), tokens are created concurrently and
		printed one per line as "NAMESPACE/NAME TOKEN", or written to --output-dir, or
		printed as a List with -o json|yaml. Transient API errors (throttling, 5xx,
		dropped connections) are retried with backoff, up to 5 attempts per request; items
		that still fail are reported one by one and the command exits 1.`)

	createExample = templates.Examples(`
		# Create a 1h token for the ServiceAccount "builder" in the current namespace
		kubectl bound-token create builder

		# Create a token for an external audience, valid for 24 hours
		kubectl bound-token create builder -n ci --audience https://vault.example.com --duration 24h

		# Bind the token to a Pod: it dies with the Pod
		kubectl bound-token create builder --bound-object-kind Pod --bound-object-name builder-7d9f

		# Write a kubeconfig that authenticates as the ServiceAccount (for a CI job)
		kubectl bound-token create deployer -n ci --kubeconfig-out ./deployer.kubeconfig

		# Create tokens for every ServiceAccount labelled team=payments, as a JSON List
		kubectl bound-token create -l team=payments -A -o json

		# Write one token file per ServiceAccount under ./tokens/NAMESPACE/NAME.token
		kubectl bound-token create api worker -n shop --output-dir ./tokens`)
)

// CreateOptions holds what `create` needs; Complete fills clients and
// printers so Run can be tested with any clientset.
type CreateOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Names         []string
	Namespace     string
	Selector      string
	AllNamespaces bool

	Audiences       []string
	Duration        time.Duration
	BoundObjectKind string
	BoundObjectName string
	BoundObjectUID  string

	OutputFile    string
	OutputDir     string
	KubeconfigOut string
	Overwrite     bool
	Concurrency   int

	Client      kubernetes.Interface
	RESTConfig  *rest.Config
	ClusterName string
	Now         func() time.Time

	printer printers.ResourcePrinter

	genericiooptions.IOStreams
}

func NewCreateOptions(streams genericiooptions.IOStreams) *CreateOptions {
	return &CreateOptions{
		PrintFlags:  genericclioptions.NewPrintFlags("created").WithTypeSetter(scheme.Scheme),
		Concurrency: 8,
		Now:         time.Now,
		IOStreams:   streams,
	}
}

func NewCmdCreate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdCreate(f, NewCreateOptions(streams))
}

// newCmdCreate binds the command to o; tests give o a fake Client first.
func newCmdCreate(f cmdutil.Factory, o *CreateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "create SERVICEACCOUNT [SERVICEACCOUNT...] | -l SELECTOR [-A]",
		DisableFlagsInUseLine: true,
		Short:                 "Create bound ServiceAccount tokens (TokenRequest API)",
		Long:                  createLong,
		Example:               createExample,
		ValidArgsFunction:     completeFirstArgNames(f, serviceAccountNames),
		RunE:                  runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags)
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Audiences, "audience", nil, "Audience of the token; repeat for several. Default: the API server's audiences.")
	fl.DurationVar(&o.Duration, "duration", 0, "Requested lifetime, whole seconds, at least 10m. Default: the server's (1h). The server may shorten it.")
	fl.StringVar(&o.BoundObjectKind, "bound-object-kind", "", "Bind the token to an object of this kind: "+strings.Join(tokens.BoundObjectKinds, ", ")+".")
	fl.StringVar(&o.BoundObjectName, "bound-object-name", "", "Name of the object to bind to; the token dies with it.")
	fl.StringVar(&o.BoundObjectUID, "bound-object-uid", "", "UID of the object to bind to. Default: looked up from the cluster.")
	fl.StringVarP(&o.Selector, "selector", "l", "", "Create tokens for every ServiceAccount matching this label selector.")
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look for ServiceAccounts in every namespace (with -l, or alone for all of them).")
	fl.StringVar(&o.OutputFile, "output-file", "", "Write the token to this file (0600, atomic) instead of stdout. One ServiceAccount only.")
	fl.StringVar(&o.OutputDir, "output-dir", "", "Write each token to DIR/NAMESPACE/NAME.token (0600 files, 0700 folders).")
	fl.StringVar(&o.KubeconfigOut, "kubeconfig-out", "", "Write a kubeconfig that uses the new token with the current cluster's server and CA. One ServiceAccount only.")
	fl.BoolVar(&o.Overwrite, "overwrite", false, "Replace existing files written by --output-file, --output-dir or --kubeconfig-out.")
	fl.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "How many token requests to send at once when creating several.")
	_ = cmd.RegisterFlagCompletionFunc("bound-object-kind", cobra.FixedCompletions(tokens.BoundObjectKinds, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *CreateOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Names = args
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.RESTConfig, err = f.ToRESTConfig(); err != nil {
		return usageErrorf("%w", err)
	}
	// Many tokens at once would otherwise queue behind client-go's default
	// 5 requests per second.
	conc := max(o.Concurrency, 1)
	if o.Client == nil {
		if o.Client, err = newThrottledClient(o.RESTConfig, float32(10*conc), 20*conc); err != nil {
			return usageErrorf("%w", err)
		}
	}
	if raw, err := f.ToRawKubeConfigLoader().RawConfig(); err == nil {
		cur := raw.CurrentContext
		if c := cmd.Flags().Lookup("context"); c != nil && c.Value.String() != "" {
			cur = c.Value.String()
		}
		if kc, ok := raw.Contexts[cur]; ok {
			o.ClusterName = kc.Cluster
		}
	}
	return nil
}

func (o *CreateOptions) bound() *tokens.BoundObject {
	if o.BoundObjectKind == "" && o.BoundObjectName == "" && o.BoundObjectUID == "" {
		return nil
	}
	return &tokens.BoundObject{Kind: o.BoundObjectKind, Name: o.BoundObjectName, UID: o.BoundObjectUID}
}

// many reports whether the request can yield more than one token.
func (o *CreateOptions) many() bool {
	return len(o.Names) > 1 || o.Selector != "" || o.AllNamespaces
}

func (o *CreateOptions) Validate() error {
	if len(o.Names) == 0 && o.Selector == "" && !o.AllNamespaces {
		return fmt.Errorf("name a ServiceAccount, or select several with -l SELECTOR or -A")
	}
	if len(o.Names) > 0 && (o.Selector != "" || o.AllNamespaces) {
		return fmt.Errorf("give ServiceAccount names or -l/-A, not both")
	}
	if err := tokens.ValidateDuration(o.Duration); err != nil {
		return tokensFlagError(err)
	}
	for _, a := range o.Audiences {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("--audience must not be empty")
		}
	}
	if err := tokens.ValidateBoundObject(o.bound()); err != nil {
		return tokensFlagError(err)
	}
	if o.many() && o.OutputFile != "" {
		return fmt.Errorf("--output-file takes one ServiceAccount; use --output-dir for several")
	}
	if o.many() && o.KubeconfigOut != "" {
		return fmt.Errorf("--kubeconfig-out takes one ServiceAccount; create them one at a time")
	}
	if o.many() && o.BoundObjectUID != "" && o.BoundObjectKind != "Node" {
		return fmt.Errorf("--bound-object-uid names one object; drop it when creating several tokens")
	}
	if o.OutputFile != "" && o.OutputDir != "" {
		return fmt.Errorf("use --output-file or --output-dir, not both")
	}
	if o.printer != nil && (o.OutputFile != "" || o.OutputDir != "") {
		return fmt.Errorf("-o prints tokens on stdout; it cannot be combined with --output-file or --output-dir")
	}
	if o.Concurrency < 1 {
		return fmt.Errorf("--concurrency must be at least 1")
	}
	if o.Client == nil {
		return fmt.Errorf("no client")
	}
	return nil
}

// tokensFlags names the flag behind each part a tokens.InvalidError names.
var tokensFlags = map[string]string{
	tokens.FieldDuration: "--duration", tokens.FieldBoundKind: "--bound-object-kind", tokens.FieldBoundName: "--bound-object-name",
}

// tokensFlagError words a tokens.InvalidError with the flag that gave the
// value: "--duration 9m0s is shorter than ...".
func tokensFlagError(err error) error {
	var ie *tokens.InvalidError
	if errors.As(err, &ie) && tokensFlags[ie.Field] != "" {
		return fmt.Errorf("%s %s", tokensFlags[ie.Field], ie.Reason)
	}
	return err
}

func (o *CreateOptions) targets(ctx context.Context) ([]tokens.Target, error) {
	if len(o.Names) > 0 {
		out := make([]tokens.Target, 0, len(o.Names))
		seen := map[string]bool{}
		for _, n := range o.Names {
			if !seen[n] {
				seen[n] = true
				out = append(out, tokens.Target{Namespace: o.Namespace, Name: n})
			}
		}
		return out, nil
	}
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	ts, err := tokens.ListTargets(ctx, o.Client, ns, o.Selector)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		where := fmt.Sprintf("namespace %q", o.Namespace)
		if o.AllNamespaces {
			where = "any namespace"
		}
		return nil, fmt.Errorf("no ServiceAccounts match selector %q in %s", o.Selector, where)
	}
	return ts, nil
}

func (o *CreateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	targets, err := o.targets(ctx)
	if err != nil {
		if clusterUnreachable(err) {
			return usageErrorf("%w", unreachable(err, "no token was created"))
		}
		return failedErrorf("%w", err)
	}
	req := tokens.Request{Audiences: o.Audiences, Duration: o.Duration, BoundObject: o.bound()}
	progress := isTerminal(o.ErrOut) && len(targets) > 1
	n := 0
	results := tokens.MintAll(ctx, o.Client, targets, req, o.Concurrency, func(tokens.Result) {
		n++
		if progress {
			fmt.Fprintf(o.ErrOut, "\rcreated %d/%d", n, len(targets))
		}
	})
	if progress {
		fmt.Fprintln(o.ErrOut)
	}

	// No answer for any of them: one line and exit 2, not one error per
	// ServiceAccount. TokenRequest stores nothing, so nothing changed.
	if err := allUnreachable(results); err != nil {
		return usageErrorf("%w", unreachable(err, "no token was created"))
	}
	var ok []*authenticationv1.TokenRequest
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(o.ErrOut, "error: %v\n", mintAdvice(r.Err))
			continue
		}
		ok = append(ok, r.TokenRequest)
		o.reportExpiry(r.TokenRequest)
	}
	if err := o.emit(ok); err != nil {
		return err
	}
	if failed > 0 {
		if len(targets) == 1 {
			return silent(ExitFailed)
		}
		return failedErrorf("%d of %d tokens could not be created", failed, len(targets))
	}
	return nil
}

// allUnreachable returns the first error when every result failed because
// the cluster did not answer, else nil.
func allUnreachable(results []tokens.Result) error {
	if len(results) == 0 {
		return nil
	}
	for _, r := range results {
		if !clusterUnreachable(r.Err) {
			return nil
		}
	}
	return results[0].Err
}

// mintAdvice adds to a pkg/tokens error the flag that changes the outcome;
// the domain package names only the problem.
func mintAdvice(err error) error {
	switch {
	case errors.Is(err, tokens.ErrBoundObjectRecreated):
		return fmt.Errorf("%w; drop --bound-object-uid to bind to the current one", err)
	case errors.Is(err, tokens.ErrBoundObjectNotFound):
		return fmt.Errorf("%w: check --bound-object-name", err)
	case errors.Is(err, tokens.ErrBoundObjectForbidden):
		return fmt.Errorf("%w; pass --bound-object-uid or ask for that permission", err)
	case errors.Is(err, tokens.ErrDurationRejected):
		return fmt.Errorf("%w; choose another --duration", err)
	}
	return err
}
