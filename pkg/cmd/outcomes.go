package cmd

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// outcomeList is the printed form of an apply or a restore.
type outcomeList struct {
	metav1.TypeMeta `json:",inline"`
	BackupDir       string           `json:"backupDir,omitempty"`
	Items           []backup.Outcome `json:"items"`
	Counts          map[string]int   `json:"counts"`
	// Waves: migrate --wave-size, each wave and what its watch saw.
	Waves []guard.Wave `json:"waves,omitempty"`
}

func (l *outcomeList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = append([]backup.Outcome(nil), l.Items...)
	c.Waves = append([]guard.Wave(nil), l.Waves...)
	c.Counts = map[string]int{}
	for k, v := range l.Counts {
		c.Counts[k] = v
	}
	return &c
}

// printOutcomeList prints an apply's or a restore's outcomes: with -o
// name, like kubectl, the objects this run changed (or would change); with
// another -o, as an outcomeList of kind; else as a table.
func printOutcomeList(printer printers.ResourcePrinter, format string, out io.Writer, kind, dir string, items []backup.Outcome, counts map[string]int, waves ...guard.Wave) error {
	switch {
	case format == "name":
		for _, it := range items {
			if printedByName(it) {
				fmt.Fprintf(out, "secret/%s\n", it.Name)
			}
		}
		return nil
	case printer != nil:
		l := &outcomeList{TypeMeta: metav1.TypeMeta{APIVersion: resultGroupVersion.String(), Kind: kind}, BackupDir: dir, Items: items, Counts: counts, Waves: waves}
		return printer.PrintObj(l, out)
	}
	if len(items) > 0 {
		w := printers.GetNewTabWriter(out)
		fmt.Fprintln(w, "NAMESPACE\tNAME\tRESULT\tDETAIL")
		for _, it := range items {
			name := it.Name
			if it.Kind != "" {
				name = workload.TypeName(it.Group, it.Kind) + "/" + it.Name
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", it.Namespace, name, it.Result, it.Message)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// printedByName: -o name lists the Secrets a run changed (or would).
func printedByName(o backup.Outcome) bool {
	switch o.Result {
	case legacy.OutInvalidated, legacy.OutDeleted, backup.OutDeletedRefLeft, backup.OutWouldChange, legacy.OutRecreated, legacy.OutLabelRemoved, legacy.OutMarksRestored:
		return o.Kind == ""
	}
	return false
}

// countsLine reads "2 invalidate, 1 used", sorted; "nothing selected"
// when empty.
func countsLine(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "nothing selected"
	}
	return strings.Join(parts, ", ")
}

// countOutcomes counts outcomes by result.
func countOutcomes(out []backup.Outcome) map[string]int {
	counts := map[string]int{}
	for _, oc := range out {
		counts[oc.Result]++
	}
	return counts
}

// printSummary ends an apply's report on errOut: the counts and, when a
// backup was written, where it is and how to undo.
func printSummary(errOut io.Writer, counts map[string]int, dir string) {
	line := "summary: " + countsLine(counts)
	if dir != "" {
		abs, _ := filepath.Abs(dir)
		line += fmt.Sprintf("\nbackup: %s (undo with: kubectl bound-token restore --from %s)", abs, abs)
	}
	fmt.Fprintln(errOut, line)
}

// failedOutcomes is exit 1, silent (the report says why), when some
// outcome failed.
func failedOutcomes(out []backup.Outcome) error {
	for _, oc := range out {
		if oc.Failed() {
			return silent(ExitFailed)
		}
	}
	return nil
}
