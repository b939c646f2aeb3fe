package cmd

import (
	"fmt"
	"io"
	"net/url"
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
			# Files to serve at https://oidc.example.com/a (upload ./site's contents under a/)
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
			issuer. Existing files are replaced only with --overwrite.

			--out-dir stands for the issuer URL, path included, not for the host's root:
			for issuer https://oidc.example.com/cluster-a, DIR/.well-known/openid-configuration
			must answer at https://oidc.example.com/cluster-a/.well-known/openid-configuration,
			so upload DIR's contents under cluster-a/ on the host (a bucket's key prefix
			cluster-a/). Served at the host's root, discovery answers 404. The command prints
			each file with the URL it must answer at on stderr.`),
		Example: templates.Examples(`
			# The IRSA-style layout for a bucket, for the cluster's own issuer
			kubectl bound-token oidc export --out-dir ./site --layout keys.json

			# For issuer https://oidc.example.com/cluster-a: upload ./site's contents under
			# cluster-a/, e.g. aws s3 cp --recursive ./site s3://BUCKET/cluster-a/
			kubectl bound-token oidc export --out-dir ./site --issuer https://oidc.example.com/cluster-a`),
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
			printUploadHint(streams.ErrOut, dir, ex)
			return nil
		},
	}
	export.Flags().StringVar(&dir, "out-dir", "", "Folder to write the site into; it is served at the issuer URL, path included.")
	export.Flags().StringVar(&issuer, "issuer", "", "Publish under this issuer URL instead of the cluster's.")
	export.Flags().StringVar(&layout, "layout", "kube", "Where the JWKS goes: kube (openid/v1/jwks) or keys.json.")
	export.Flags().BoolVar(&overwrite, "overwrite", false, "Replace existing files.")
	cmd.AddCommand(export)
	return cmd
}

// printUploadHint says which URL each written file must answer at: dir is
// the issuer's root, which for an issuer with a path is not the host's.
func printUploadHint(w io.Writer, dir string, ex *oidc.Export) {
	u, err := url.Parse(ex.Issuer)
	if err != nil {
		return
	}
	host := u.Scheme + "://" + u.Host + "/"
	prefix := strings.Trim(u.Path, "/")
	if prefix == "" {
		fmt.Fprintf(w, "serve %s at the root of %s:\n", dir, host)
	} else {
		fmt.Fprintf(w, "serve %s at %s/, not at the host's root (there discovery answers 404): upload its contents under %s/\n", dir, strings.TrimSuffix(ex.Issuer, "/"), prefix)
	}
	width := 0
	for _, f := range ex.Files {
		width = max(width, len(f))
	}
	for i, f := range ex.Files {
		fmt.Fprintf(w, "  %-*s -> %s\n", width, f, ex.URLs[i])
	}
}
