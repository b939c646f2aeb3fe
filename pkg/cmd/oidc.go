package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/oidc"
)

func NewCmdOIDC(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oidc",
		Short: "Publish the cluster's issuer documents for a static host",
		Example: templates.Examples(`
			# Files to upload to the bucket behind https://oidc.example.com/a
			kubectl bound-token oidc export --out-dir ./site --issuer https://oidc.example.com/a`),
		Run: func(cmd *cobra.Command, args []string) { _ = cmd.Help() },
	}
	var dir, issuer, layout string
	var overwrite bool
	export := &cobra.Command{
		Use:                   "export --out-dir DIR [--issuer URL] [--layout kube|keys.json]",
		DisableFlagsInUseLine: true,
		Short:                 "Write the cluster's discovery document and JWKS in a static host's layout",
		Long: templates.LongDesc(`
			Fetch the cluster's /.well-known/openid-configuration and /openid/v1/jwks through
			the API and write them under --out-dir as a static web host serves them:
			.well-known/openid-configuration plus openid/v1/jwks (--layout kube) or keys.json.
			issuer is rewritten to --issuer when given; jwks_uri always points under the
			issuer. Existing files are replaced only with --overwrite.`),
		Example: templates.Examples(`
			# The IRSA-style layout for a bucket
			kubectl bound-token oidc export --out-dir ./site --layout keys.json`),
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageErrorf("--out-dir is required")
			}
			if _, ok := oidc.Layouts[layout]; !ok {
				return usageErrorf("--layout %q is not supported; use kube or keys.json", layout)
			}
			cs, err := f.KubernetesClientSet()
			if err != nil {
				return usageError(err)
			}
			d, ks, raw, err := oidc.Fetch(cmd.Context(), cs)
			if err != nil {
				return usageError(err)
			}
			ex, err := oidc.Write(d, raw, ks, dir, issuer, layout, overwrite)
			if err != nil {
				return &ExitError{Code: ExitFailed, Err: err}
			}
			if ex.Issuer != ex.ClusterIssuer {
				fmt.Fprintf(streams.ErrOut, "issuer rewritten: %s -> %s; tokens carry the cluster's --service-account-issuer, so set it to %s\n", ex.ClusterIssuer, ex.Issuer, ex.Issuer)
			}
			fmt.Fprintf(streams.Out, "issuer:   %s\njwks_uri: %s\nkeys:     %s\n", ex.Issuer, ex.JWKSURI, strings.Join(ex.KeyIDs, ", "))
			for _, f := range ex.Files {
				fmt.Fprintf(streams.Out, "wrote     %s\n", f)
			}
			return nil
		},
	}
	export.Flags().StringVar(&dir, "out-dir", "", "Folder to write the site into.")
	export.Flags().StringVar(&issuer, "issuer", "", "Publish under this issuer URL instead of the cluster's.")
	export.Flags().StringVar(&layout, "layout", "kube", "Where the JWKS goes: kube (openid/v1/jwks) or keys.json.")
	export.Flags().BoolVar(&overwrite, "overwrite", false, "Replace existing files.")
	cmd.AddCommand(export)
	return cmd
}
