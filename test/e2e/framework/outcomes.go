package framework

import (
	"encoding/json"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

// This file reads the outcomes that migrate, restore and switch print with
// -o json, for the suites that check what each object came to.

// SecretOutcomes reads -o json of an apply or restore by namespace/name,
// kind:namespace/name for an outcome that names its kind (a workload),
// as the migrate suite names them.
func SecretOutcomes(t testing.TB, stdout string) map[string]backup.Outcome {
	t.Helper()
	m := map[string]backup.Outcome{}
	for _, o := range outcomes(t, stdout) {
		k := o.Namespace + "/" + o.Name
		if o.Kind != "" {
			k = o.Kind + ":" + k
		}
		m[k] = o
	}
	return m
}

// WorkloadOutcomes reads -o json of an apply or restore by kind/name, name
// alone for an outcome that names no kind (a Secret), as the switch suite
// names them (one namespace a test).
func WorkloadOutcomes(t testing.TB, stdout string) map[string]backup.Outcome {
	t.Helper()
	m := map[string]backup.Outcome{}
	for _, o := range outcomes(t, stdout) {
		k := o.Name
		if o.Kind != "" {
			k = o.Kind + "/" + o.Name
		}
		m[k] = o
	}
	return m
}

func outcomes(t testing.TB, stdout string) []backup.Outcome {
	t.Helper()
	var l struct {
		Items []backup.Outcome `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	return l.Items
}
