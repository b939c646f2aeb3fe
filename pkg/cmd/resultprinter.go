package cmd

import (
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// newResultPrintFlags is -o for a result that is not a Kubernetes object
// (a verdict, a rotation): json, yaml, jsonpath and go-template, as
// genericclioptions.NewPrintFlags offers them, without "name": such a
// result has none. The default (no -o) is the command's own table or text.
func newResultPrintFlags() *genericclioptions.PrintFlags {
	format := ""
	return &genericclioptions.PrintFlags{
		OutputFormat:         &format,
		JSONYamlPrintFlags:   genericclioptions.NewJSONYamlPrintFlags(),
		TemplatePrinterFlags: genericclioptions.NewKubeTemplatePrintFlags(),
	}
}

// addResultPrintFlags adds pf's flags to cmd and completes -o with its
// formats. --show-managed-fields is hidden: a result has no managedFields.
func addResultPrintFlags(cmd *cobra.Command, pf *genericclioptions.PrintFlags) {
	pf.AddFlags(cmd)
	_ = cmd.Flags().MarkHidden("show-managed-fields")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(pf.AllowedFormats(), cobra.ShellCompDirectiveNoFileComp))
}

// resultPrinter builds pf's printer in Complete, so that a bad -o fails
// (exit 2) before anything is read or changed; nil means the default output.
// A --template without -o means go-template, as in kubectl.
func resultPrinter(pf *genericclioptions.PrintFlags) (printers.ResourcePrinter, error) {
	format := ""
	if pf.OutputFormat != nil {
		format = *pf.OutputFormat
	}
	tmpl := pf.TemplatePrinterFlags != nil && pf.TemplatePrinterFlags.TemplateArgument != nil && *pf.TemplatePrinterFlags.TemplateArgument != ""
	if format == "" && !tmpl {
		return nil, nil
	}
	return pf.ToPrinter()
}

// printResult stamps obj with the plugin's group (the one migrate's reports
// use) and kind, which cli-runtime's printers require, and prints it.
func printResult(p printers.ResourcePrinter, kind string, obj runtime.Object, w io.Writer) error {
	obj.GetObjectKind().SetGroupVersionKind(legacy.ReportGroupVersion.WithKind(kind))
	return p.PrintObj(obj, w)
}
