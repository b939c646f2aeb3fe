package cmd

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
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
	cmd.AddCommand(newCmdKeysGenerate(f, streams), newCmdKeysJWKS(f, streams), newCmdKeysDiscovery(streams))
	return cmd
}

type KeysGenerateOptions struct {
	OutDir     string
	Type       string
	PKCS8      bool
	SecretName string
	Format     string
	Namespace  string
	f          cmdutil.Factory
	genericiooptions.IOStreams
}

func newCmdKeysGenerate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &KeysGenerateOptions{Type: "rsa2048", Format: "generic", f: f, IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "generate (--out-dir DIR | --secret NAME) [--type rsa2048|rsa4096|ec256]",
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return usageError(err)
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.OutDir, "out-dir", "", "Write sa.key and sa.pub into this folder.")
	cmd.Flags().StringVar(&o.Type, "type", o.Type, "Key type: "+strings.Join(keys.Types, ", ")+".")
	cmd.Flags().BoolVar(&o.PKCS8, "pkcs8", false, "Write the private key as PKCS#8 (\"PRIVATE KEY\").")
	cmd.Flags().StringVar(&o.SecretName, "secret", "", "Store the pair in a new Secret with this name in the namespace.")
	cmd.Flags().StringVar(&o.Format, "format", o.Format, "Secret layout: generic (sa.key, sa.pub) or hypershift (key; RSA, PKCS#1 only).")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(keys.Types, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(keys.SecretFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *KeysGenerateOptions) Validate() error {
	if o.OutDir == "" && o.SecretName == "" {
		return fmt.Errorf("say where the key goes: --out-dir DIR, --secret NAME, or both")
	}
	if o.Format != "generic" && o.Format != "hypershift" {
		return fmt.Errorf("--format %q is not supported; use generic or hypershift", o.Format)
	}
	if o.Format == "hypershift" && (o.PKCS8 || o.Type == "ec256") {
		return fmt.Errorf("--format hypershift: HyperShift reads only RSA keys in PKCS#1 form (x509.ParsePKCS1PrivateKey); use --type rsa2048 or rsa4096 without --pkcs8")
	}
	for _, t := range keys.Types {
		if t == o.Type {
			return nil
		}
	}
	return fmt.Errorf("--type %q is not supported; use one of %s", o.Type, strings.Join(keys.Types, ", "))
}

func (o *KeysGenerateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	p, err := keys.Generate(o.Type, o.PKCS8)
	if err != nil {
		return err
	}
	if o.SecretName != "" {
		ns, _, err := o.f.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return usageError(err)
		}
		cs, err := o.f.KubernetesClientSet()
		if err != nil {
			return usageError(err)
		}
		s, err := p.SecretFor(ns, o.SecretName, o.Format)
		if err != nil {
			return usageError(err)
		}
		if err := keys.CreateSecret(ctx, cs, s); err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "created secret %s/%s\n", ns, o.SecretName)
	}
	if o.OutDir != "" {
		if err := p.WriteFiles(o.OutDir); err != nil {
			return err
		}
		fmt.Fprintf(o.ErrOut, "wrote %s/%s and %s/%s\n", o.OutDir, keys.PrivateFile, o.OutDir, keys.PublicFile)
	}
	fmt.Fprintln(o.Out, p.KeyID)
	return nil
}

type KeysJWKSOptions struct {
	Files          []string
	FromConfigMap  string
	LegacyEmptyKid bool
	Merge          string
	f              cmdutil.Factory
	genericiooptions.IOStreams
}

func newCmdKeysJWKS(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &KeysJWKSOptions{f: f, IOStreams: streams}
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
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Files = args
			if len(o.Files) == 0 && o.FromConfigMap == "" {
				return usageErrorf("name key files or --from-configmap NS/NAME")
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.FromConfigMap, "from-configmap", "", "Also read every PEM value of this ConfigMap (NAMESPACE/NAME).")
	cmd.Flags().BoolVar(&o.LegacyEmptyKid, "legacy-empty-kid", false, "Add an empty-kid duplicate of each key (pre-1.16 tokens).")
	cmd.Flags().StringVar(&o.Merge, "merge", "", "Merge the keys of this existing JWKS file (deduplicated by kid).")
	return cmd
}

func (o *KeysJWKSOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ks := &jwt.KeySet{}
	for _, f := range o.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return usageError(err)
		}
		one, err := jwt.ParsePEM(b)
		if err != nil {
			return usageErrorf("%s: %v", f, err)
		}
		ks = ks.Merge(one)
	}
	if o.FromConfigMap != "" {
		ns, name, ok := strings.Cut(o.FromConfigMap, "/")
		if !ok || ns == "" || name == "" {
			return usageErrorf("--from-configmap %q: want NAMESPACE/NAME", o.FromConfigMap)
		}
		cs, err := o.f.KubernetesClientSet()
		if err != nil {
			return usageError(err)
		}
		one, err := keys.FromConfigMap(ctx, cs, ns, name)
		if err != nil {
			return usageError(err)
		}
		ks = ks.Merge(one)
	}
	if o.Merge != "" {
		b, err := os.ReadFile(o.Merge)
		if err != nil {
			return usageError(err)
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

func newCmdKeysDiscovery(streams genericiooptions.IOStreams) *cobra.Command {
	var issuer, jwksURI string
	var algs []string
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if issuer == "" {
				return usageErrorf("--issuer is required")
			}
			d, err := keys.Discovery(issuer, jwksURI, algs)
			if err != nil {
				return usageError(err)
			}
			b, err := keys.MarshalDocument(d)
			if err != nil {
				return err
			}
			_, err = streams.Out.Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&issuer, "issuer", "", "The issuer URL (https, no query or fragment), as in --service-account-issuer.")
	cmd.Flags().StringVar(&jwksURI, "jwks-uri", "", "Where the JWKS is served. Default: ISSUER/openid/v1/jwks.")
	cmd.Flags().StringArrayVar(&algs, "alg", nil, "Signing algorithm to advertise; repeatable. Default: RS256.")
	return cmd
}
