package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
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
	cmd.AddCommand(newCmdOIDCExport(f, streams))
	return cmd
}

// OIDCExportOptions holds what `oidc export` needs.
type OIDCExportOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Dir       string
	Issuer    string
	Layout    string
	Overwrite bool

	Client  kubernetes.Interface
	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewOIDCExportOptions(streams genericiooptions.IOStreams) *OIDCExportOptions {
	return &OIDCExportOptions{PrintFlags: newResultPrintFlags(), Layout: "kube", IOStreams: streams}
}

func newCmdOIDCExport(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOIDCExportOptions(streams)
	cmd := &cobra.Command{
		Use:                   "export --out-dir DIR [--issuer URL] [--layout kube|keys.json] [-o json|yaml|jsonpath=...]",
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
		RunE: runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags)
	cmd.Flags().StringVar(&o.Dir, "out-dir", "", "Folder to write the site into; it is served at the issuer URL, path included.")
	cmd.Flags().StringVar(&o.Issuer, "issuer", "", "Publish under this issuer URL instead of the cluster's.")
	cmd.Flags().StringVar(&o.Layout, "layout", o.Layout, "Where the JWKS goes: kube (openid/v1/jwks) or keys.json.")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "Replace existing files.")
	_ = cmd.RegisterFlagCompletionFunc("layout", cobra.FixedCompletions([]string{"kube", "keys.json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o *OIDCExportOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if o.Client, err = f.KubernetesClientSet(); err != nil {
		return usageErrorf("%w", err)
	}
	return nil
}

func (o *OIDCExportOptions) Validate() error {
	if o.Dir == "" {
		return fmt.Errorf("--out-dir is required")
	}
	if _, ok := oidc.Layouts[o.Layout]; !ok {
		return fmt.Errorf("--layout %q is not supported; use kube or keys.json", o.Layout)
	}
	return nil
}

// Run writes the site and prints what it wrote, as kind OIDCExport under -o.
func (o *OIDCExportOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	d, ks, raw, err := oidc.Fetch(ctx, o.Client)
	if err != nil {
		return usageErrorf("%w", err)
	}
	ex, err := oidc.Write(d, raw, ks, o.Dir, o.Issuer, o.Layout, o.Overwrite)
	if err != nil {
		return failedErrorf("%w", withOverwriteAdvice(keysError(err, "")))
	}
	if ex.Issuer != ex.ClusterIssuer {
		fmt.Fprintf(o.ErrOut, "issuer rewritten: %s -> %s; tokens carry the cluster's --service-account-issuer, so set it to %s\n", ex.ClusterIssuer, ex.Issuer, ex.Issuer)
	}
	if o.printer != nil {
		if err := o.printer.PrintObj(newResult("OIDCExport", ex), o.Out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(o.Out, "issuer:   %s\njwks_uri: %s\nkeys:     %s\n", ex.Issuer, ex.JWKSURI, strings.Join(ex.KeyIDs, ", "))
		for _, f := range ex.Files {
			fmt.Fprintf(o.Out, "wrote     %s\n", f)
		}
	}
	printUploadHint(o.ErrOut, o.Dir, ex)
	return nil
}

// withOverwriteAdvice adds the flag that replaces an existing file to
// fileutil's "file exists".
func withOverwriteAdvice(err error) error {
	if errors.Is(err, fileutil.ErrExists) {
		return fmt.Errorf("%w; pass --overwrite to replace it", err)
	}
	return err
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
