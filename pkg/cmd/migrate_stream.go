package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// auditWindow is how many table rows are aligned together: the table is
// flushed every auditWindow rows, and cli-runtime's tabwriter remembers
// its column widths across flushes (printers.GetNewTabWriter sets
// tabwriter.RememberWidths, as kubectl get --watch relies on), so columns
// only ever widen. Memory holds one window, not the audit.
const auditWindow = 500

// streamable reports the formats the audit writes Secret by Secret; the
// others (jsonpath, templates, kyaml) go through cli-runtime's printers,
// which need the whole report.
func streamable(format string) bool {
	switch format {
	case "", "wide", "name", "json", "yaml":
		return true
	}
	return false
}

// auditStream writes an audit as each Secret is judged. Nothing is
// written before the first Secret, so an audit that fails before it
// prints nothing; one that fails after it leaves a partial document, which
// the command says on stderr (incomplete).
type auditStream struct {
	o  *MigrateOptions
	w  *bufio.Writer
	tw interface {
		io.Writer
		Flush() error
	}
	format  string
	now     time.Time
	started bool
	rows    int
	sum     legacy.Summary
}

func (o *MigrateOptions) newAuditStream() *auditStream {
	return &auditStream{o: o, w: bufio.NewWriterSize(o.Out, 1<<16), format: o.format(), now: o.Now(), sum: legacy.NewReport().Summary}
}

// item writes one judged Secret.
func (a *auditStream) item(f *legacy.Finding) error {
	a.sum.Add(f)
	first := !a.started
	a.started = true
	switch a.format {
	case "name":
		fmt.Fprintf(a.w, "secret/%s\n", f.Name)
	case "json":
		if first {
			a.head(`{
    "kind": %q,
    "apiVersion": %q,
    "items": [
`)
		} else {
			a.w.WriteString(",\n")
		}
		b, err := json.MarshalIndent(f, "        ", "    ")
		if err != nil {
			return err
		}
		a.w.WriteString("        ")
		a.w.Write(b)
	case "yaml":
		// sigs.k8s.io/yaml sorts keys: apiVersion, items, kind, summary.
		if first {
			fmt.Fprintf(a.w, "apiVersion: %s\nitems:\n", legacy.NewReport().APIVersion)
		}
		b, err := yaml.Marshal(f)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		for i, l := range lines {
			if i == 0 {
				a.w.WriteString("- " + l + "\n")
			} else {
				a.w.WriteString("  " + l + "\n")
			}
		}
	default:
		if first {
			a.tw = printers.GetNewTabWriter(a.w)
			fmt.Fprintln(a.tw, auditHeader(a.format == "wide"))
		}
		writeAuditRow(a.tw, f, a.now, a.format == "wide")
		if a.rows++; a.rows%auditWindow == 0 {
			if err := a.tw.Flush(); err != nil {
				return err
			}
		}
	}
	// Written out as it goes: a write error (a closed pipe) stops the
	// scan rather than filling memory.
	if a.w.Buffered() >= 1<<15 {
		return a.w.Flush()
	}
	return nil
}

func (a *auditStream) head(format string) {
	r := legacy.NewReport()
	fmt.Fprintf(a.w, format, r.Kind, r.APIVersion)
}

// end writes what follows the last Secret: the summary.
func (a *auditStream) end(info *legacy.ScanInfo) error {
	a.sum.Info = info
	r := legacy.NewReport()
	switch a.format {
	case "name":
	case "json":
		if !a.started {
			a.head(`{
    "kind": %q,
    "apiVersion": %q,
    "items": [],
`)
		} else {
			a.w.WriteString("\n    ],\n")
		}
		sum, err := json.MarshalIndent(a.sum, "    ", "    ")
		if err != nil {
			return err
		}
		a.w.WriteString("    \"summary\": ")
		a.w.Write(sum)
		a.w.WriteString("\n}\n")
	case "yaml":
		if !a.started {
			fmt.Fprintf(a.w, "apiVersion: %s\nitems: []\n", r.APIVersion)
		}
		b, err := yaml.Marshal(struct {
			Kind    string         `json:"kind"`
			Summary legacy.Summary `json:"summary"`
		}{r.Kind, a.sum})
		if err != nil {
			return err
		}
		a.w.Write(b)
	default:
		if !a.started {
			fmt.Fprintln(a.o.ErrOut, "No legacy token Secrets found.")
			break
		}
		if err := a.tw.Flush(); err != nil {
			return err
		}
		s := a.sum
		fmt.Fprintf(a.w, "\n%d legacy token Secret%s: %s; %d read by pods or workloads, %d already invalid.\n",
			s.Total, text.Plural(s.Total), countsLine(s.Verdicts), s.Read, s.Invalid)
	}
	return a.w.Flush()
}

// streamAudit judges the selected Secrets and writes each as it is judged
// (auditStream), so that memory does not grow with the Secrets listed. A
// failure after the first Secret was written leaves the output incomplete:
// it says so on stderr and exits 1.
func (o *MigrateOptions) streamAudit(ctx context.Context) error {
	a := o.newAuditStream()
	info, err := legacy.Scan(ctx, o.Client, o.auditScanOptions(), func(f *legacy.Finding) error {
		f.Secret = nil
		o.sink.add(f)
		return a.item(f)
	})
	if err == nil && o.sink != nil {
		o.sink.info = info
	}
	if err == nil {
		err = a.end(info)
		if err == nil {
			o.printBasis(info)
			return nil
		}
	}
	if !a.started {
		return usageErrorf("%w", err)
	}
	_ = a.w.Flush()
	if a.tw != nil {
		_ = a.tw.Flush()
		_ = a.w.Flush()
	}
	return failedErrorf("%v; the output above is incomplete (%d Secret%s written)", err, a.sum.Total, text.Plural(a.sum.Total))
}
