package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
)

// resultGroupVersion is the plugin-local group of every printed result
// that is not a Kubernetes object (the audit's Report already uses it).
var resultGroupVersion = kubeapi.OutputGroupVersion

// result is how a result that is not a Kubernetes object reaches
// cli-runtime's printers, which refuse an object without apiVersion and
// kind (printers.JSONPrinter.PrintObj) and read every other field through
// encoding/json (JSONPathPrinter, GoTemplatePrinter, YAMLPrinter): the
// document is apiVersion, kind, then the body's own fields.
type result struct {
	metav1.TypeMeta
	body any
}

func newResult(kind string, body any) *result {
	return &result{TypeMeta: metav1.TypeMeta{APIVersion: resultGroupVersion.String(), Kind: kind}, body: body}
}

// DeepCopyObject is shallow: the printers never change what they print.
func (r *result) DeepCopyObject() runtime.Object {
	c := *r
	return &c
}

func (r *result) MarshalJSON() ([]byte, error) {
	body, err := json.Marshal(r.body)
	if err != nil {
		return nil, err
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("%s: the body of a printed result must be a JSON object", r.Kind)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"apiVersion":%q,"kind":%q`, r.APIVersion, r.Kind)
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 1 {
		b.WriteByte(',')
		b.Write(rest)
	} else {
		b.WriteByte('}')
	}
	return b.Bytes(), nil
}

// newResultPrintFlags is -o for a result without a name: json, yaml,
// jsonpath and go-template, as kubectl's printers do them.
func newResultPrintFlags() *genericclioptions.PrintFlags {
	pf := genericclioptions.NewPrintFlags("")
	pf.NamePrintFlags = nil
	return pf
}

// addPrintFlags binds -o (and --template) and completes -o with the
// formats this command prints; tables are the command's own (-o wide).
func addPrintFlags(cmd *cobra.Command, pf *genericclioptions.PrintFlags, tables ...string) {
	pf.AddFlags(cmd)
	// What this plugin prints never carries managedFields.
	_ = cmd.Flags().MarkHidden("show-managed-fields")
	formats := append(slices.Clone(tables), pf.AllowedFormats()...)
	if len(tables) > 0 {
		cmd.Flags().Lookup("output").Usage = fmt.Sprintf("Output format. One of: (%s).", strings.Join(formats, ", "))
	}
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// outputFormat is -o as given ("" when unset).
func outputFormat(pf *genericclioptions.PrintFlags) string {
	if pf == nil || pf.OutputFormat == nil {
		return ""
	}
	return *pf.OutputFormat
}

// toPrinter builds -o's printer in Complete, so that a bad -o fails
// (exit 2) before anything is read or changed. nil means the command's
// own table: no -o, or one of tables (such as "wide").
func toPrinter(pf *genericclioptions.PrintFlags, tables ...string) (printers.ResourcePrinter, error) {
	format := outputFormat(pf)
	template := pf.TemplatePrinterFlags != nil && pf.TemplatePrinterFlags.TemplateArgument != nil && *pf.TemplatePrinterFlags.TemplateArgument != ""
	if (format == "" && !template) || slices.Contains(tables, format) {
		return nil, nil
	}
	p, err := pf.ToPrinter()
	if err != nil {
		if genericclioptions.IsNoCompatiblePrinterError(err) {
			return nil, usageErrorf("--output %q is not supported; use one of: %s", format, strings.Join(append(slices.Clone(tables), pf.AllowedFormats()...), ", "))
		}
		return nil, usageErrorf("%w", err)
	}
	return p, nil
}

// printResult stamps obj with the plugin's group (the one migrate's reports
// use) and kind, which cli-runtime's printers require, and prints it.
func printResult(p printers.ResourcePrinter, kind string, obj runtime.Object, w io.Writer) error {
	obj.GetObjectKind().SetGroupVersionKind(kubeapi.OutputGroupVersion.WithKind(kind))
	return p.PrintObj(obj, w)
}
