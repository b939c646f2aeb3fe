package cmd

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/verify"
)

var (
	verifyLong = templates.LongDesc(`
		Prove a ServiceAccount token: its signature, algorithm, issuer, audience and times.

		Keys come from the current cluster's /openid/v1/jwks by default, or from --jwks
		files, --public-key PEM files, or an --oidc-issuer's discovery document and the
		JWKS it points to (HTTPS). For an issuer whose certificate a private CA signed,
		--oidc-ca-file names a PEM bundle: as curl's --cacert, it replaces the system's
		CAs for those two requests (without it, the global --certificate-authority is
		used when given, else the system's CAs). --insecure-skip-tls-verify is only for
		test issuers. Keys named in the token itself (jku, x5u, jwk headers) are never
		used: such tokens are rejected.

		Only RS256, ES256, ES384 and ES512 are accepted. The key is chosen by the token's
		kid; a token without kid is tried against every key, as kube-apiserver does.
		exp and nbf are checked with --leeway (default 1m) for clock skew. Every failed
		check is reported, not just the first.

		Offline checks cannot see a deleted bound Pod or an invalidated legacy Secret.
		--token-review asks the cluster instead (TokenReview API): that answer is
		authoritative.

		--batch reads one token per line from stdin and prints one result per line;
		keys are fetched once. -o json prints each verdict as one line of JSON; yaml,
		jsonpath and go-template print each in turn.

		Exit codes: 0 verified (with --batch: all of them), 1 rejected (any of them),
		2 could not verify (usage error, unreadable or unreachable keys).`)

	verifyExample = templates.Examples(`
		# Verify a token against the current cluster's keys
		kubectl bound-token create builder | kubectl bound-token verify -

		# Verify offline against a saved JWKS, requiring an issuer and an audience
		kubectl bound-token verify --token-file token --jwks jwks.json \
		  --issuer https://kubernetes.default.svc --audience vault

		# Verify against a self-hosted OIDC issuer
		kubectl bound-token verify - --oidc-issuer https://oidc.example.com/cluster-a < token

		# ... whose certificate a private CA signed
		kubectl bound-token verify --token-file token --oidc-issuer https://oidc.internal/cluster-a \
		  --oidc-ca-file internal-ca.pem

		# Ask the cluster itself (sees deleted pods and invalidated Secrets)
		kubectl bound-token verify --token-file token --token-review --audience vault

		# Verify many tokens, one per line, as JSON lines
		kubectl bound-token verify --batch --jwks jwks.json -o json < tokens.txt`)
)

// VerifyKind is the kind of verify's -o output.
const VerifyKind = "TokenVerdict"

type VerifyOptions struct {
	PrintFlags  *genericclioptions.PrintFlags
	Input       tokenInput
	Batch       bool
	JWKSFiles   []string
	PEMFiles    []string
	OIDCIssuer  string
	OIDCCAFile  string
	TokenReview bool
	Issuers     []string
	Audiences   []string
	Leeway      time.Duration
	Now         func() time.Time

	format    string
	printer   printers.ResourcePrinter // nil: the human form
	oidcRoots *x509.CertPool           // nil: the system's CAs
	insecure  bool
	clientFn  func() (kubernetes.Interface, string, error)
	genericiooptions.IOStreams
}

func NewVerifyOptions(streams genericiooptions.IOStreams) *VerifyOptions {
	return &VerifyOptions{PrintFlags: newResultPrintFlags(), Now: time.Now, Leeway: verify.DefaultLeeway, IOStreams: streams}
}

func NewCmdVerify(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVerifyOptions(streams)
	cmd := &cobra.Command{
		Use:                   "verify [TOKEN | -] [--token-file FILE | --from-secret NAME | --batch] [key source] [checks]",
		DisableFlagsInUseLine: true,
		Short:                 "Verify a token's signature, issuer, audience and times, or ask the cluster",
		Long:                  verifyLong,
		Example:               verifyExample,
		Args:                  argsUsage(cobra.MaximumNArgs(1)),
		RunE:                  runE(o, f),
	}
	addTokenInputFlags(f, cmd, &o.Input)
	fl := cmd.Flags()
	fl.BoolVar(&o.Batch, "batch", false, "Read one token per line from stdin; print one result per line.")
	fl.StringArrayVar(&o.JWKSFiles, "jwks", nil, "Verify with the keys of this JWKS file; repeatable.")
	fl.StringArrayVar(&o.PEMFiles, "public-key", nil, "Verify with the keys of this PEM file (public keys, certificates or private keys); repeatable.")
	fl.StringVar(&o.OIDCIssuer, "oidc-issuer", "", "Fetch keys through this issuer's /.well-known/openid-configuration (HTTPS); the token's iss must equal it.")
	fl.StringVar(&o.OIDCCAFile, "oidc-ca-file", "", "Trust only the CAs of this PEM bundle for --oidc-issuer's discovery document and JWKS, instead of the system's.")
	fl.BoolVar(&o.TokenReview, "token-review", false, "Ask the cluster's TokenReview API instead of checking offline.")
	fl.StringArrayVar(&o.Issuers, "issuer", nil, "Require iss to be this value; repeatable (any of them).")
	fl.StringArrayVar(&o.Audiences, "audience", nil, "Require aud to contain this value; repeatable (any of them). With --token-review, sent to the server.")
	fl.DurationVar(&o.Leeway, "leeway", verify.DefaultLeeway, "Clock skew allowed on exp, nbf and iat.")
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func (o *VerifyOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Input.Arg = args[0]
	}
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if o.PrintFlags.OutputFormat != nil {
		o.format = *o.PrintFlags.OutputFormat
	}
	o.clientFn = clientFromFactory(f)
	// --oidc-ca-file is the issuer's own; the global --certificate-authority
	// served the issuer before it existed and still does when it is not given.
	caFile, flagName := o.OIDCCAFile, "--oidc-ca-file"
	if fl := cmd.Flags().Lookup("certificate-authority"); caFile == "" && fl != nil && o.OIDCIssuer != "" {
		caFile, flagName = fl.Value.String(), "--certificate-authority"
	}
	if fl := cmd.Flags().Lookup("insecure-skip-tls-verify"); fl != nil {
		o.insecure = fl.Value.String() == "true"
	}
	// Read before any request: a bad bundle is a usage error, not a TLS
	// failure against the issuer.
	if caFile != "" && o.OIDCIssuer != "" {
		roots, err := verify.LoadCAPool(caFile)
		if err != nil {
			return fmt.Errorf("%s: %v", flagName, err)
		}
		o.oidcRoots = roots
	}
	return nil
}

func (o *VerifyOptions) Validate() error {
	if o.Batch {
		if o.Input.Arg != "" && o.Input.Arg != "-" || o.Input.File != "" || o.Input.FromSecret != "" {
			return fmt.Errorf("--batch reads tokens from stdin; drop TOKEN, --token-file and --from-secret")
		}
	} else if err := o.Input.validate(); err != nil {
		return err
	}
	if o.TokenReview && (len(o.JWKSFiles) > 0 || len(o.PEMFiles) > 0 || o.OIDCIssuer != "") {
		return fmt.Errorf("--token-review asks the cluster; it cannot be combined with --jwks, --public-key or --oidc-issuer")
	}
	if o.TokenReview && len(o.Issuers) > 0 {
		return fmt.Errorf("--token-review checks the issuer against the cluster's own list; drop --issuer")
	}
	if o.OIDCCAFile != "" && o.OIDCIssuer == "" {
		return fmt.Errorf("--oidc-ca-file is the CA bundle for --oidc-issuer; give --oidc-issuer URL or drop it")
	}
	if o.OIDCIssuer != "" && !strings.HasPrefix(o.OIDCIssuer, "https://") {
		return fmt.Errorf("--oidc-issuer %q must be an https:// URL", o.OIDCIssuer)
	}
	if o.Leeway < 0 || o.Leeway > 10*time.Minute {
		return fmt.Errorf("--leeway %s is out of range; use 0 to 10m", o.Leeway)
	}
	for _, a := range append(append([]string{}, o.Audiences...), o.Issuers...) {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("--audience and --issuer must not be empty")
		}
	}
	return nil
}

func (o *VerifyOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	check, err := o.checker(ctx)
	if err != nil {
		return usageErrorf("%w", err)
	}
	if o.Batch {
		return o.runBatch(ctx, check)
	}
	raw, err := o.Input.read(ctx, o.In, o.clientFn)
	if err != nil {
		return usageErrorf("%w", err)
	}
	v, err := check.Check(ctx, raw)
	if err != nil {
		return usageErrorf("%w", err)
	}
	if o.printer != nil {
		if err := printResult(o.printer, VerifyKind, v, o.Out); err != nil {
			return err
		}
	} else {
		o.printHuman(v, check)
	}
	if !v.Verified {
		return silent(ExitFailed)
	}
	return nil
}

// checker loads keys (or a cluster client) once, so --batch pays for it
// once, and adds to the errors the flags that would help.
func (o *VerifyOptions) checker(ctx context.Context) (*verify.Checker, error) {
	c := verify.Checks{
		TokenReview: o.TokenReview,
		Sources:     verify.Sources{JWKSFiles: o.JWKSFiles, PEMFiles: o.PEMFiles, OIDCIssuer: o.OIDCIssuer},
		Issuers:     o.Issuers, Audiences: o.Audiences, Leeway: o.Leeway, Now: o.Now,
	}
	if o.OIDCIssuer != "" {
		c.Sources.HTTPClient = verify.HTTPClient(o.oidcRoots, o.insecure)
	}
	if o.TokenReview || len(o.JWKSFiles) == 0 && len(o.PEMFiles) == 0 && o.OIDCIssuer == "" {
		cs, _, err := o.clientFn()
		if err != nil {
			return nil, err
		}
		c.Sources.Cluster = cs
	}
	check, err := verify.NewChecker(ctx, c)
	switch {
	case errors.Is(err, verify.ErrJWKSForbidden):
		return nil, fmt.Errorf("%w; or pass --jwks, --public-key, --oidc-issuer or --token-review", err)
	case errors.Is(err, verify.ErrJWKSNotServed):
		return nil, fmt.Errorf("%w; pass --jwks or --public-key", err)
	}
	return check, err
}

func (o *VerifyOptions) printHuman(v *verify.Verdict, check *verify.Checker) {
	now := o.Now()
	if v.Verified {
		if v.TokenReview != nil {
			fmt.Fprintf(o.Out, "VERIFIED by %s: authenticated as %s\n", check.Source(), printable(v.TokenReview.Username))
			if len(v.TokenReview.Audiences) > 0 {
				fmt.Fprintf(o.Out, "  audiences accepted: %s\n", strings.Join(v.TokenReview.Audiences, ", "))
			}
		} else {
			fmt.Fprintf(o.Out, "VERIFIED: %s signature by key %q from %s", v.Algorithm, v.KeyID, check.Source())
			if check.IssuerChecked() {
				fmt.Fprint(o.Out, ", issuer checked")
			}
			if check.AudienceChecked() {
				fmt.Fprint(o.Out, ", audience checked")
			}
			fmt.Fprintln(o.Out)
		}
	} else {
		fmt.Fprintf(o.Out, "REJECTED (%d problem%s):\n", len(v.Errors), text.Plural(len(v.Errors)))
		for _, e := range v.Errors {
			fmt.Fprintf(o.Out, "  - %s\n", printable(e))
		}
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(o.Out, "WARNING: %s\n", w)
	}
	if v.Token != nil {
		fmt.Fprintln(o.Out)
		printTokenHuman(o.Out, v.Token, now)
	}
}

func (o *VerifyOptions) runBatch(ctx context.Context, check *verify.Checker) error {
	sc := bufio.NewScanner(o.In)
	sc.Buffer(make([]byte, 0, 64*1024), jwt.MaxTokenSize+1)
	out := bufio.NewWriter(o.Out)
	defer out.Flush()
	// -o json stays one compact document per line, for line-based tools;
	// the JSON printer would indent it over many.
	enc := json.NewEncoder(out)
	line, total, rejected := 0, 0, 0
	now := o.Now()
	for sc.Scan() {
		line++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		total++
		v, err := check.Check(ctx, raw)
		if err != nil {
			out.Flush()
			if total > 1 { // the tokens above were checked and printed
				return failedErrorf("line %d: %v", line, err)
			}
			return usageErrorf("line %d: %v", line, err)
		}
		v.Line = line
		if !v.Verified {
			rejected++
		}
		switch {
		case o.format == "json":
			v.SetGroupVersionKind(kubeapi.OutputGroupVersion.WithKind(VerifyKind))
			if err := enc.Encode(v); err != nil {
				return err
			}
		case o.printer != nil:
			if err := printResult(o.printer, VerifyKind, v, out); err != nil {
				return err
			}
		default:
			batchLine(out, v, now)
		}
	}
	if err := sc.Err(); err != nil {
		out.Flush()
		if err == bufio.ErrTooLong {
			err = fmt.Errorf("line %d of stdin is longer than 1 MiB: not a token", line+1)
		} else {
			err = fmt.Errorf("read stdin: %v", err)
		}
		if total > 0 { // the tokens above were checked and printed
			return failedErrorf("%w", err)
		}
		return usageErrorf("%w", err)
	}
	out.Flush()
	if total == 0 {
		return usageErrorf("--batch read no tokens from stdin")
	}
	if isTerminal(o.ErrOut) || rejected > 0 {
		fmt.Fprintf(o.ErrOut, "%d of %d tokens verified\n", total-rejected, total)
	}
	if rejected > 0 {
		return silent(ExitFailed)
	}
	return nil
}

func batchLine(w io.Writer, v *verify.Verdict, now time.Time) {
	subject := "-"
	if v.Token != nil && v.Token.Claims.Subject != "" {
		subject = v.Token.Claims.Subject
	}
	subject = printable(subject)
	if v.Verified {
		exp := "never expires"
		if v.Token != nil && v.Token.Claims.Expiry != nil {
			exp = "expires " + jwt.RelativeTime(*v.Token.Claims.Expiry, now)
		}
		fmt.Fprintf(w, "%d\tVERIFIED\t%s\t%s\n", v.Line, subject, exp)
		return
	}
	fmt.Fprintf(w, "%d\tREJECTED\t%s\t%s\n", v.Line, subject, printable(strings.Join(v.Errors, "; ")))
}
