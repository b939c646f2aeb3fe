package cmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// outcomeStream writes an apply's outcomes as they come (the same
// document printOutcomeList writes at the end, with the counts after the
// items), so that a run over 100,000 Secrets holds the Secrets in flight,
// not its report. The table is aligned by windows of auditWindow rows, as
// the audit's is.
type outcomeStream struct {
	w  *bufio.Writer
	tw interface {
		io.Writer
		Flush() error
	}
	format, kind, dir string
	started           bool
	rows              int
	failed            bool
}

func newOutcomeStream(out io.Writer, format, kind, dir string) *outcomeStream {
	return &outcomeStream{w: bufio.NewWriterSize(out, 1<<16), format: format, kind: kind, dir: dir}
}

func (s *outcomeStream) head() {
	fmt.Fprintf(s.w, "{\n    \"kind\": %q,\n    \"apiVersion\": %q,\n", s.kind, resultGroupVersion.String())
	if s.dir != "" {
		b, _ := json.Marshal(s.dir)
		fmt.Fprintf(s.w, "    \"backupDir\": %s,\n", b)
	}
}

// item writes one outcome.
func (s *outcomeStream) item(o backup.Outcome) error {
	if o.Failed() {
		s.failed = true
	}
	first := !s.started
	s.started = true
	switch s.format {
	case "name":
		if printedByName(o) {
			fmt.Fprintf(s.w, "secret/%s\n", o.Name)
		}
	case "json":
		if first {
			s.head()
			s.w.WriteString("    \"items\": [\n")
		} else {
			s.w.WriteString(",\n")
		}
		b, err := json.MarshalIndent(o, "        ", "    ")
		if err != nil {
			return err
		}
		s.w.WriteString("        ")
		s.w.Write(b)
	case "yaml":
		if first {
			fmt.Fprintf(s.w, "apiVersion: %s\n", resultGroupVersion.String())
			if s.dir != "" {
				b, _ := yaml.Marshal(map[string]string{"backupDir": s.dir})
				s.w.Write(b)
			}
			s.w.WriteString("items:\n")
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if i == 0 {
				s.w.WriteString("- " + l + "\n")
			} else {
				s.w.WriteString("  " + l + "\n")
			}
		}
	default:
		if first {
			s.tw = printers.GetNewTabWriter(s.w)
			fmt.Fprintln(s.tw, "NAMESPACE\tNAME\tRESULT\tDETAIL")
		}
		name := o.Name
		if o.Kind != "" {
			name = workload.TypeName(o.Group, o.Kind) + "/" + o.Name
		}
		fmt.Fprintf(s.tw, "%s\t%s\t%s\t%s\n", o.Namespace, name, o.Result, o.Message)
		if s.rows++; s.rows%auditWindow == 0 {
			if err := s.tw.Flush(); err != nil {
				return err
			}
		}
	}
	if s.w.Buffered() >= 1<<15 {
		return s.w.Flush()
	}
	return nil
}

// end writes what follows the last outcome: the counts.
func (s *outcomeStream) end(counts map[string]int) error {
	if counts == nil {
		counts = map[string]int{}
	}
	switch s.format {
	case "name":
	case "json":
		if !s.started {
			s.head()
			s.w.WriteString("    \"items\": [],\n")
		} else {
			s.w.WriteString("\n    ],\n")
		}
		b, err := json.MarshalIndent(counts, "    ", "    ")
		if err != nil {
			return err
		}
		s.w.WriteString("    \"counts\": ")
		s.w.Write(b)
		s.w.WriteString("\n}\n")
	case "yaml":
		if !s.started {
			fmt.Fprintf(s.w, "apiVersion: %s\n", resultGroupVersion.String())
			if s.dir != "" {
				b, _ := yaml.Marshal(map[string]string{"backupDir": s.dir})
				s.w.Write(b)
			}
			s.w.WriteString("items: []\n")
		}
		b, err := yaml.Marshal(struct {
			Counts map[string]int `json:"counts"`
			Kind   string         `json:"kind"`
		}{counts, s.kind})
		if err != nil {
			return err
		}
		s.w.Write(b)
	default:
		if s.tw != nil {
			if err := s.tw.Flush(); err != nil {
				return err
			}
		}
	}
	return s.w.Flush()
}

// abandon writes out what is buffered after a failure.
func (s *outcomeStream) abandon() {
	if s.tw != nil {
		_ = s.tw.Flush()
	}
	_ = s.w.Flush()
}
