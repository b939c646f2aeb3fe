package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/version"
)

var versionExample = templates.Examples(`
	# Print the plugin version
	kubectl bound-token version

	# Print version, commit and build date as JSON
	kubectl bound-token version -o json

	# Only the version
	kubectl bound-token version -o jsonpath='{.version}'`)

// VersionOptions holds what `version` needs.
type VersionOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	printer printers.ResourcePrinter
	genericiooptions.IOStreams
}

func NewVersionOptions(streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{PrintFlags: newResultPrintFlags(), IOStreams: streams}
}

func NewCmdVersion(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(streams)
	cmd := &cobra.Command{
		Use:                   "version [-o json|yaml|jsonpath=...]",
		DisableFlagsInUseLine: true,
		Short:                 "Print the plugin version",
		Example:               versionExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOptions(o, f, cmd, args)
		},
	}
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func (o *VersionOptions) Complete(_ cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	o.printer, err = toPrinter(o.PrintFlags)
	return err
}

func (o *VersionOptions) Validate() error { return nil }

// Run prints version.Info, as kind Version under -o.
func (o *VersionOptions) Run(context.Context) error {
	info := version.Get()
	if o.printer != nil {
		return o.printer.PrintObj(newResult("Version", info), o.Out)
	}
	_, err := fmt.Fprintf(o.Out, "kubectl bound-token %s (commit %s, built %s, %s, %s)\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	return err
}
