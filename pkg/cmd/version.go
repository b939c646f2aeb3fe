package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/discovery"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/version"
)

var versionLong = templates.LongDesc(`
	Print the plugin's version and, as kubectl version does, the version of the
	current context's kube-apiserver. --client prints the plugin's alone and
	reaches no cluster.

	Exit codes: 0 printed, 1 the cluster could not be asked (the plugin's version
	is printed all the same).`)

var versionExample = templates.Examples(`
	# Print the plugin version and the cluster's
	kubectl bound-token version

	# The plugin alone, without a cluster
	kubectl bound-token version --client

	# Print version, commit and build date as JSON
	kubectl bound-token version -o json

	# Only the version
	kubectl bound-token version -o jsonpath='{.version}'`)

// VersionOptions holds what `version` needs.
type VersionOptions struct {
	PrintFlags *genericclioptions.PrintFlags
	// Client prints the plugin's version alone (kubectl version --client).
	Client bool

	// discovery asks the server's version; nil with Client.
	discovery discovery.ServerVersionInterface
	printer   printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewVersionOptions(streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{PrintFlags: newResultPrintFlags(), IOStreams: streams}
}

func NewCmdVersion(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(streams)
	cmd := &cobra.Command{
		Use:                   "version [--client] [-o json|yaml|jsonpath=...]",
		DisableFlagsInUseLine: true,
		Short:                 "Print the plugin version and the cluster's",
		Long:                  versionLong,
		Example:               versionExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags)
	cmd.Flags().BoolVar(&o.Client, "client", o.Client, "Print the plugin's version only; reach no cluster.")
	return cmd
}

func (o *VersionOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.printer, err = toPrinter(o.PrintFlags); err != nil {
		return err
	}
	if !o.Client {
		// A client that cannot be built (no kubeconfig) is the same
		// answer as a cluster that cannot be reached: Run says so after
		// printing the plugin's version. Not the factory's cached
		// discovery: one GET /version needs no disk cache.
		if cfg, err := f.ToRESTConfig(); err == nil {
			o.discovery, _ = discovery.NewDiscoveryClientForConfig(cfg)
		}
	}
	return nil
}

// versionInfo is what -o prints: the plugin's fields, as before, and the
// server's version (k8s.io/apimachinery/pkg/version.Info, as kubectl
// version prints it under serverVersion) when it was asked.
type versionInfo struct {
	version.Info  `json:",inline"`
	ServerVersion *apimachineryversion.Info `json:"serverVersion,omitempty"`
}

func (o *VersionOptions) Validate() error { return nil }

// Run prints the plugin's version.Info and the server's, as kind Version
// under -o. A server that cannot be asked is an error after the plugin's
// version is printed, as kubectl version does.
func (o *VersionOptions) Run(context.Context) error {
	info := versionInfo{Info: version.Get()}
	var serverErr error
	if !o.Client {
		if o.discovery == nil {
			serverErr = fmt.Errorf("no cluster is configured")
		} else if info.ServerVersion, serverErr = o.discovery.ServerVersion(); serverErr != nil {
			info.ServerVersion = nil
		}
	}
	if o.printer != nil {
		if err := o.printer.PrintObj(newResult("Version", info), o.Out); err != nil {
			return err
		}
	} else {
		if _, err := fmt.Fprintf(o.Out, "kubectl bound-token %s (commit %s, built %s, %s, %s)\n",
			info.Version, info.Commit, info.Date, info.GoVersion, info.Platform); err != nil {
			return err
		}
		if info.ServerVersion != nil {
			if _, err := fmt.Fprintf(o.Out, "Server: Kubernetes %s\n", info.ServerVersion.GitVersion); err != nil {
				return err
			}
		}
	}
	if serverErr != nil {
		return failedErrorf("cannot ask the cluster for its version: %v; --client prints the plugin's alone", serverErr)
	}
	return nil
}
