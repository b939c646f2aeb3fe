package cmd

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// The streamed report is the document the printers write at the end: the
// same fields and values, in every streamed format, empty or not.
func TestOutcomeStreamWritesThePrintersDocument(t *testing.T) {
	items := []backup.Outcome{
		{Namespace: "a", Name: "t1", Result: legacy.OutInvalidated, Message: "guarded until 2027-03-07"},
		{Namespace: "a", Name: "t2", Result: backup.OutFailed, Message: `patch: "quoted" <x>`},
		{Kind: "Rollout", Group: "argoproj.io", Namespace: "b", Name: "r", Result: "switched"},
	}
	counts := map[string]int{legacy.OutInvalidated: 1, backup.OutFailed: 1, "switched": 1}
	for _, tc := range []struct {
		format  string
		printer printers.ResourcePrinter
	}{
		{"json", &printers.JSONPrinter{}},
		{"yaml", &printers.YAMLPrinter{}},
		{"name", nil},
		{"", nil},
	} {
		for _, n := range []int{0, len(items)} {
			var want, got bytes.Buffer
			if err := printOutcomeList(tc.printer, tc.format, &want, "LegacyTokenMigration", "/tmp/b", items[:n], counts); err != nil {
				t.Fatal(err)
			}
			s := newOutcomeStream(&got, tc.format, "LegacyTokenMigration", "/tmp/b")
			for _, o := range items[:n] {
				if err := s.item(o); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.end(counts); err != nil {
				t.Fatal(err)
			}
			if s.failed != (n > 0) {
				t.Errorf("%q: failed = %v with %d items, one of them failed", tc.format, s.failed, n)
			}
			switch tc.format {
			case "json", "yaml":
				var w, g map[string]any
				if err := yaml.Unmarshal(want.Bytes(), &w); err != nil {
					t.Fatal(err)
				}
				if err := yaml.Unmarshal(got.Bytes(), &g); err != nil {
					t.Fatalf("%s, %d items: streamed document does not parse: %v\n%s", tc.format, n, err, got.String())
				}
				if w["items"] == nil {
					w["items"] = []any{} // the printer writes null for none
				}
				if !reflect.DeepEqual(w, g) {
					wj, _ := json.Marshal(w)
					gj, _ := json.Marshal(g)
					t.Errorf("%s, %d items:\n got %s\nwant %s", tc.format, n, gj, wj)
				}
				if tc.format == "json" && !json.Valid(got.Bytes()) {
					t.Errorf("invalid JSON:\n%s", got.String())
				}
			default:
				if strings.Join(strings.Fields(got.String()), " ") != strings.Join(strings.Fields(want.String()), " ") {
					t.Errorf("%q, %d items:\n got %q\nwant %q", tc.format, n, got.String(), want.String())
				}
			}
		}
	}
}
