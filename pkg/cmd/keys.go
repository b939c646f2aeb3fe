package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

func NewCmdKeys(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate signing keys and build JWKS and discovery documents for self-hosted issuers",
		Long: templates.LongDesc(`
			Signing keys and the documents a self-hosted service-account issuer publishes
			(the IRSA-style bucket): one command each instead of openssl, a Go program and jq.
			Key IDs are computed exactly as kube-apiserver computes them.`),
		Example: templates.Examples(`
			# A new RSA key pair and its kid
			kubectl bound-token keys generate --out-dir ./sa-keys

			# The JWKS for that key, and the discovery document for its issuer
			kubectl bound-token keys jwks ./sa-keys/sa.pub > keys.json
			kubectl bound-token keys discovery --issuer https://oidc.example.com/cluster-a`),
		Run: func(cmd *cobra.Command, args []string) { _ = cmd.Help() },
	}
	cmd.AddCommand(newCmdKeysGenerate(f, streams), newCmdKeysJWKS(f, streams), newCmdKeysDiscovery(f, streams))
	return cmd
}

// KeysGenerateOptions holds what `keys generate` needs.
type KeysGenerateOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	OutDir     string
	Type       string
	PKCS8      bool
	SecretName string
	Format     string

	Namespace string
	Client    kubernetes.Interface
	printer   printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewKeysGenerateOptions(streams genericiooptions.IOStreams) *KeysGenerateOptions {
	return &KeysGenerateOptions{PrintFlags: newResultPrintFlags(), Type: "rsa2048", Format: keys.FormatGeneric, IOStreams: streams}
}

func newCmdKeysGenerate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewKeysGenerateOptions(streams)
	cmd := &cobra.Command{
		Use:                   "generate (--out-dir DIR | --secret NAME) [--type rsa2048|rsa4096|ec256] [-o json|yaml|jsonpath=...]",
		DisableFlagsInUseLine: true,
		Short:                 "Generate a ServiceAccount signing key pair and print its kid",
		Long: templates.LongDesc(`
			Generate a signing key pair: the private key (PKCS#1 or SEC1 PEM, or PKCS#8 with
			--pkcs8) as sa.key and the public key (PKIX PEM) as sa.pub, both 0600 in a 0700
			folder, or in a Secret. Existing key files and Secrets are never replaced. The kid
			that kube-apiserver will put in tokens is printed on stdout.`),
		Example: templates.Examples(`
			# Files for --service-account-signing-key-file / --service-account-key-file
			kubectl bound-token keys generate --out-dir ./sa-keys --type ec256

			# A Secret for a HyperShift HostedCluster's spec.serviceAccountSigningKey
			kubectl bound-token keys generate --secret cluster-a-sa-key -n clusters --format hypershift`),
		Args: argsUsage(cobra.NoArgs),
		RunE: runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags)
	cmd.Flags().StringVar(&o.OutDir, "out-dir", "", "Write sa.key and sa.pub into this folder.")
	cmd.Flags().StringVar(&o.Type, "type", o.Type, "Key type: "+strings.Join(keys.Types, ", ")+".")
	cmd.Flags().BoolVar(&o.PKCS8, "pkcs8", false, "Write the private key as PKCS#8 (\"PRIVATE KEY\").")
	cmd.Flags().StringVar(&o.SecretName, "secret", "", "Store the pair in a new Secret with this name in the namespace.")
	cmd.Flags().StringVar(&o.Format, "format", o.Format, "Secret layout: generic (sa.key, sa.pub) or hypershift (key; RSA, PKCS#1 only).")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(keys.Types, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(keys.SecretFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// keysFlags names the flag behind each input a keys.InvalidError names.
var keysFlags = map[string]string{
	keys.FieldType: "--type", keys.FieldFormat: "--format", keys.FieldIssuer: "--issuer",
	keys.FieldJWKSURI: "--jwks-uri", keys.FieldAlg: "--alg",
}

// keysError words the keys package's errors with this CLI's flags: an
// unusable input is a usage error naming its flag; an existing key says
// which flag picks another place.
func keysError(err error, elsewhere string) error {
	var ie *keys.InvalidError
	switch {
	case errors.As(err, &ie):
		name := keysFlags[ie.Field]
		if name == "" {
			name = ie.Field
		}
		return usageErrorf("%s %q %s", name, ie.Value, ie.Reason)
	case errors.Is(err, keys.ErrKeyExists) && elsewhere != "":
		return failedErrorf("%v; choose another %s", err, elsewhere)
	}
	return err
}

func (o *KeysGenerateOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	// Files alone need no kubeconfig.
	if o.SecretName == "" {
		return nil
	}
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Client, err = f.KubernetesClientSet(); err != nil {
		return usageErrorf("%w", err)
	}
	return nil
}

func (o *KeysGenerateOptions) Validate() error {
	if o.OutDir == "" && o.SecretName == "" {
		return fmt.Errorf("say where the key goes: --out-dir DIR, --secret NAME, or both")
	}
	if !slices.Contains(keys.SecretFormats, o.Format) {
		return fmt.Errorf("--format %q is not supported; use generic or hypershift", o.Format)
	}
	if o.Format == keys.FormatHyperShift && (o.PKCS8 || o.Type == "ec256") {
		return fmt.Errorf("--format hypershift: HyperShift reads only RSA keys in PKCS#1 form (x509.ParsePKCS1PrivateKey); use --type rsa2048 or rsa4096 without --pkcs8")
	}
	if !slices.Contains(keys.Types, o.Type) {
		return fmt.Errorf("--type %q is not supported; use one of %s", o.Type, strings.Join(keys.Types, ", "))
	}
	return nil
}

// generatedKey is what `keys generate -o` prints (kind SigningKey): never
// the private key.
type generatedKey struct {
	KeyID     string   `json:"kid"`
	Type      string   `json:"type"`
	Files     []string `json:"files,omitempty"`
	Secret    string   `json:"secret,omitempty"`
	PublicKey string   `json:"publicKey"`
}

func (o *KeysGenerateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	p, err := keys.Generate(o.Type, o.PKCS8)
	if err != nil {
		return keysError(err, "")
	}
	res := generatedKey{KeyID: p.KeyID, Type: o.Type, PublicKey: string(p.PublicPEM)}
	if o.SecretName != "" {
		s, err := p.SecretFor(o.Namespace, o.SecretName, o.Format)
		if err != nil {
			return keysError(usageErrorf("%w", err), "")
		}
		if err := keys.CreateSecret(ctx, o.Client, s); err != nil {
			return keysError(err, "--secret name")
		}
		fmt.Fprintf(o.ErrOut, "created secret %s/%s\n", o.Namespace, o.SecretName)
		res.Secret = o.Namespace + "/" + o.SecretName
	}
	if o.OutDir != "" {
		if err := p.WriteFiles(o.OutDir); err != nil {
			return keysError(err, "--out-dir")
		}
		fmt.Fprintf(o.ErrOut, "wrote %s/%s and %s/%s\n", o.OutDir, keys.PrivateFile, o.OutDir, keys.PublicFile)
		res.Files = []string{filepath.Join(o.OutDir, keys.PrivateFile), filepath.Join(o.OutDir, keys.PublicFile)}
	}
	if o.printer != nil {
		return o.printer.PrintObj(newResult("SigningKey", res), o.Out)
	}
	fmt.Fprintln(o.Out, p.KeyID)
	return nil
}

// KeysJWKSOptions holds what `keys jwks` needs. Its output is the JWKS
// document itself (RFC 7517), so it has no -o.
type KeysJWKSOptions struct {
	Files          []string
	FromConfigMap  string
	LegacyEmptyKid bool
	Merge          string

	Client kubernetes.Interface
	genericiooptions.IOStreams
}

func newCmdKeysJWKS(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &KeysJWKSOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "jwks [KEY_FILE...] [--from-configmap NS/NAME] [--merge OLD_JWKS] [--legacy-empty-kid]",
		DisableFlagsInUseLine: true,
		Short:                 "Print the JWKS for public or private key files",
		Long: templates.LongDesc(`
			Print a JWKS document ({"keys": [...]}, use "sig", alg RS256/ES256/ES384/ES512)
			for PEM keys: public keys, certificates, or private keys (only the public half is
			published). The kid is kube-apiserver's, so the output equals the cluster's
			/openid/v1/jwks for the same keys.

			--merge adds the keys of an older JWKS for a rotation window (deduplicated by kid);
			--legacy-empty-kid adds the empty-kid duplicates that verifiers of tokens minted
			before Kubernetes 1.16 need; --from-configmap reads OpenShift's
			openshift-config-managed/bound-sa-token-signing-certs.`),
		Example: templates.Examples(`
			# JWKS for a new key, keeping the old keys trusted during rotation
			kubectl bound-token keys jwks new/sa.pub --merge old-keys.json > keys.json

			# JWKS for OpenShift's bound-token signing certificates
			kubectl bound-token keys jwks --from-configmap openshift-config-managed/bound-sa-token-signing-certs`),
		RunE: runE(o, f),
	}
	cmd.Flags().StringVar(&o.FromConfigMap, "from-configmap", "", "Also read every PEM value of this ConfigMap (NAMESPACE/NAME).")
	cmd.Flags().BoolVar(&o.LegacyEmptyKid, "legacy-empty-kid", false, "Add an empty-kid duplicate of each key (pre-1.16 tokens).")
	cmd.Flags().StringVar(&o.Merge, "merge", "", "Merge the keys of this existing JWKS file (deduplicated by kid).")
	return cmd
}

func (o *KeysJWKSOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Files = args
	if o.FromConfigMap == "" {
		return nil
	}
	var err error
	if o.Client, err = f.KubernetesClientSet(); err != nil {
		return usageErrorf("%w", err)
	}
	return nil
}

func (o *KeysJWKSOptions) Validate() error {
	if len(o.Files) == 0 && o.FromConfigMap == "" {
		return fmt.Errorf("name key files or --from-configmap NS/NAME")
	}
	if o.FromConfigMap != "" {
		if ns, name, ok := strings.Cut(o.FromConfigMap, "/"); !ok || ns == "" || name == "" {
			return fmt.Errorf("--from-configmap %q: want NAMESPACE/NAME", o.FromConfigMap)
		}
	}
	return nil
}

func (o *KeysJWKSOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ks := &jwt.KeySet{}
	for _, f := range o.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return usageErrorf("%w", err)
		}
		one, err := jwt.ParsePEM(b)
		if err != nil {
			return usageErrorf("%s: %v", f, err)
		}
		ks = ks.Merge(one)
	}
	if o.FromConfigMap != "" {
		ns, name, _ := strings.Cut(o.FromConfigMap, "/")
		one, err := keys.FromConfigMap(ctx, o.Client, ns, name)
		if err != nil {
			return usageErrorf("%w", err)
		}
		ks = ks.Merge(one)
	}
	if o.Merge != "" {
		b, err := os.ReadFile(o.Merge)
		if err != nil {
			return usageErrorf("%w", err)
		}
		old, err := jwt.ParseJWKS(b)
		if err != nil {
			return usageErrorf("--merge %s: %v", o.Merge, err)
		}
		ks = ks.Merge(old)
	}
	if o.LegacyEmptyKid {
		ks = keys.WithLegacyEmptyKid(ks)
	}
	b, err := ks.MarshalJWKS()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.Out, "%s\n", b)
	return err
}

// KeysDiscoveryOptions holds what `keys discovery` needs. Its output is
// the OIDC discovery document itself, so it has no -o.
type KeysDiscoveryOptions struct {
	Issuer  string
	JWKSURI string
	Algs    []string
	genericiooptions.IOStreams
}

func newCmdKeysDiscovery(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &KeysDiscoveryOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "discovery --issuer URL [--jwks-uri URL] [--alg RS256]",
		DisableFlagsInUseLine: true,
		Short:                 "Print the OIDC discovery document for an issuer",
		Long: templates.LongDesc(`
			Print the /.well-known/openid-configuration document kube-apiserver would serve
			for --issuer: issuer, jwks_uri (default ISSUER/openid/v1/jwks),
			response_types_supported, subject_types_supported and the signing algorithms.`),
		Example: templates.Examples(`
			# Discovery for a bucket that serves keys.json
			kubectl bound-token keys discovery --issuer https://oidc.example.com/a --jwks-uri https://oidc.example.com/a/keys.json`),
		Args: argsUsage(cobra.NoArgs),
		RunE: runE(o, f),
	}
	cmd.Flags().StringVar(&o.Issuer, "issuer", "", "The issuer URL (https, no query or fragment), as in --service-account-issuer.")
	cmd.Flags().StringVar(&o.JWKSURI, "jwks-uri", "", "Where the JWKS is served. Default: ISSUER/openid/v1/jwks.")
	cmd.Flags().StringArrayVar(&o.Algs, "alg", nil, "Signing algorithm to advertise; repeatable. Default: RS256.")
	return cmd
}

func (o *KeysDiscoveryOptions) Complete(cmdutil.Factory, *cobra.Command, []string) error { return nil }

func (o *KeysDiscoveryOptions) Validate() error {
	if o.Issuer == "" {
		return fmt.Errorf("--issuer is required")
	}
	return nil
}

func (o *KeysDiscoveryOptions) Run(context.Context) error {
	d, err := keys.Discovery(o.Issuer, o.JWKSURI, o.Algs)
	if err != nil {
		return keysError(err, "")
	}
	b, err := keys.MarshalDocument(d)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(b)
	return err
}
