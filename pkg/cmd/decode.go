package cmd

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

var (
	decodeLong = templates.LongDesc(`
		Show what a ServiceAccount token says: header, issuer, subject, audiences, times
		in words, the kubernetes.io block (namespace, ServiceAccount, bound Pod, Secret or
		Node) and whether it is a legacy Secret-based token that never expires.

		decode checks NOTHING: anybody can write a token that decodes. Use
		'kubectl bound-token verify' to prove one.

		A token given as an argument lands in your shell history; prefer '-' (stdin) or
		--token-file.`)

	decodeExample = templates.Examples(`
		# Decode a token from stdin
		kubectl bound-token create builder | kubectl bound-token decode -

		# Decode a token file, as JSON
		kubectl bound-token decode --token-file /var/run/secrets/kubernetes.io/serviceaccount/token -o json

		# Decode the token held by a legacy token Secret
		kubectl bound-token decode --from-secret builder-token-x7k2p -n ci`)
)

// DecodeOptions holds what `decode` needs.
type DecodeOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Input tokenInput
	Now   func() time.Time

	printer  printers.ResourcePrinter
	clientFn func() (kubernetes.Interface, string, error)
	genericiooptions.IOStreams
}

func NewDecodeOptions(streams genericiooptions.IOStreams) *DecodeOptions {
	return &DecodeOptions{PrintFlags: newResultPrintFlags(), Now: time.Now, IOStreams: streams}
}

func NewCmdDecode(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewDecodeOptions(streams)
	cmd := &cobra.Command{
		Use:                   "decode [TOKEN | -] [--token-file FILE | --from-secret NAME] [-o json|yaml|jsonpath=...]",
		DisableFlagsInUseLine: true,
		Short:                 "Show a token's claims without verifying it",
		Long:                  decodeLong,
		Example:               decodeExample,
		Args:                  argsUsage(cobra.MaximumNArgs(1)),
		RunE:                  runE(o, f),
	}
	addTokenInputFlags(f, cmd, &o.Input)
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func addTokenInputFlags(f cmdutil.Factory, cmd *cobra.Command, in *tokenInput) {
	cmd.Flags().StringVar(&in.File, "token-file", "", "Read the token from this file.")
	cmd.Flags().StringVar(&in.FromSecret, "from-secret", "", "Read the token from this legacy token Secret (type kubernetes.io/service-account-token) in the namespace.")
	_ = cmd.RegisterFlagCompletionFunc("from-secret", completeNames(f, secretNames))
}

func clientFromFactory(f cmdutil.Factory) func() (kubernetes.Interface, string, error) {
	return func() (kubernetes.Interface, string, error) {
		ns, _, err := f.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, "", err
		}
		cs, err := f.KubernetesClientSet()
		if err != nil {
			return nil, "", err
		}
		return cs, ns, nil
	}
}

func (o *DecodeOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Input.Arg = args[0]
	}
	// The cluster is only reached for --from-secret, and only in Run.
	o.clientFn = clientFromFactory(f)
	var err error
	o.printer, err = toPrinter(o.PrintFlags)
	return err
}

func (o *DecodeOptions) Validate() error {
	return o.Input.validate()
}

func (o *DecodeOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	raw, err := o.Input.read(ctx, o.In, o.clientFn)
	if err != nil {
		return usageErrorf("%w", err)
	}
	tok, err := jwt.Decode(raw)
	if err != nil {
		return usageErrorf("%w", err)
	}
	if o.printer != nil {
		return o.printer.PrintObj(newResult("DecodedToken", newTokenView(tok)), o.Out)
	}
	fmt.Fprintln(o.Out, "NOT VERIFIED: decode only shows what the token says; run 'kubectl bound-token verify' to prove it.")
	printTokenHuman(o.Out, tok, o.Now())
	return nil
}

// tokenView is decode's JSON and YAML shape; verify adds its verdict.
type tokenView struct {
	Header   map[string]any `json:"header"`
	Payload  map[string]any `json:"payload"`
	Legacy   bool           `json:"legacy"`
	Verified bool           `json:"verified"`
}

func newTokenView(t *jwt.Token) tokenView {
	return tokenView{Header: t.HeaderMap(), Payload: t.PayloadMap(), Legacy: t.Claims.IsLegacy()}
}

func printTokenHuman(w io.Writer, t *jwt.Token, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	tt := tokenTable{w: tw, now: now}
	c := t.Claims
	if c.IsLegacy() {
		tt.row("Kind:", "legacy Secret-based token: NEVER EXPIRES, no audience; replace it with a bound token")
	} else {
		tt.row("Kind:", "bound token (TokenRequest)")
	}
	tt.row("Algorithm:", orDash(t.Header.Algorithm))
	kid := t.Header.KeyID
	if kid == "" {
		kid = "(empty: any key of the issuer may have signed it)"
	}
	tt.row("Key ID:", kid)
	tt.row("Issuer:", orDash(c.Issuer))
	tt.row("Subject:", orDash(c.Subject))
	if len(c.Audience) > 0 {
		tt.row("Audiences:", strings.Join(c.Audience, ", "))
	} else {
		tt.row("Audiences:", "-")
	}
	tt.times(&c)
	if c.ID != "" {
		tt.row("Token ID:", c.ID)
	}
	if k := c.Kubernetes; k != nil {
		tt.kubernetes(k)
	}
	if l := c.Legacy; l != nil {
		tt.row("kubernetes.io/serviceaccount:", "")
		tt.row("  Namespace:", orDash(l.Namespace))
		tt.row("  Secret:", orDash(l.SecretName))
		tt.row("  ServiceAccount:", refString(&jwt.ObjectRef{Name: l.ServiceAccountName, UID: l.ServiceAccountUID}))
	}
	if extra := unknownHeaders(t.Header.Names); len(extra) > 0 {
		tt.row("Other header fields:", strings.Join(extra, ", "))
	}
}

// tokenTable is printTokenHuman's table of claims, times relative to now.
type tokenTable struct {
	w   io.Writer
	now time.Time
}

// row writes one line. Claims are attacker-chosen until verified: control
// characters could move the cursor and repaint "REJECTED" away, so they
// are escaped.
func (tt tokenTable) row(k, v string) { fmt.Fprintf(tt.w, "%s\t%s\n", k, printable(v)) }

func (tt tokenTable) when(tp *time.Time) string {
	if tp == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s)", tp.UTC().Format(time.RFC3339), jwt.RelativeTime(*tp, tt.now))
}

// times writes when the token was issued, is valid from and expires.
func (tt tokenTable) times(c *jwt.Claims) {
	tt.row("Issued at:", tt.when(c.IssuedAt))
	tt.row("Not before:", tt.when(c.NotBefore))
	switch {
	case c.Expiry == nil:
		tt.row("Expires:", "never")
	case c.Expiry.Before(tt.now):
		tt.row("Expires:", fmt.Sprintf("%s (EXPIRED %s)", c.Expiry.UTC().Format(time.RFC3339), jwt.RelativeTime(*c.Expiry, tt.now)))
	default:
		tt.row("Expires:", tt.when(c.Expiry))
	}
	if c.IssuedAt != nil && c.Expiry != nil {
		tt.row("Lifetime:", c.Expiry.Sub(*c.IssuedAt).String())
	}
}

// kubernetes writes a bound token's kubernetes.io claim.
func (tt tokenTable) kubernetes(k *jwt.KubernetesClaims) {
	tt.row("kubernetes.io:", "")
	tt.row("  Namespace:", orDash(k.Namespace))
	tt.row("  ServiceAccount:", refString(&k.ServiceAccount))
	if k.Pod != nil {
		tt.row("  Bound to Pod:", refString(k.Pod))
	}
	if k.Secret != nil {
		tt.row("  Bound to Secret:", refString(k.Secret))
	}
	if k.Node != nil {
		label := "  Bound to Node:"
		if k.Pod != nil {
			label = "  Node (of the pod):"
		}
		tt.row(label, refString(k.Node))
	}
	if k.Pod == nil && k.Secret == nil && k.Node == nil {
		tt.row("  Bound to:", "nothing (lives until it expires)")
	}
	if k.WarnAfter != nil {
		tt.row("  Warn after:", tt.when(k.WarnAfter)+": nominal expiry of a kubelet-extended token")
	}
}

func unknownHeaders(names []string) []string {
	var out []string
	for _, k := range names {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// printable escapes control characters (C0, DEL, C1) and invalid UTF-8 the
// way %q would, leaving ordinary text as it is.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func refString(r *jwt.ObjectRef) string {
	if r == nil || r.Name == "" {
		return "-"
	}
	if r.UID == "" {
		return r.Name
	}
	return fmt.Sprintf("%s (uid %s)", r.Name, r.UID)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
