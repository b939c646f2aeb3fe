package switcher

import (
	"slices"
	"strings"
	"testing"
)

// switch names only kinds whose template it can rewrite: a reader-only
// kind (a Knative Revision, an Argo Workflow) is refused in one line, not
// planned into nothing, and is not offered by completion.
func TestParseRefRefusesReaderOnlyKinds(t *testing.T) {
	for _, ref := range []string{"workflow.argoproj.io/w", "revision.serving.knative.dev/web-00001", "workflowtemplate.argoproj.io/t"} {
		_, _, err := ParseRef(ref)
		if err == nil || !strings.Contains(err.Error(), "not a template switch can rewrite") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseRef(%q) = %v, want a one-line refusal", ref, err)
		}
	}
	for _, ref := range []string{"deploy/web", "pod/p", "rollout.argoproj.io/r", "ro/r", "scaledjob.keda.sh/j", "ksvc/web"} {
		if k, n, err := ParseRef(ref); err != nil || k == nil || n == "" {
			t.Errorf("ParseRef(%q) = %v, %q, %v", ref, k, n, err)
		}
	}
	names := KindNames()
	for _, readerOnly := range []string{"workflow.argoproj.io", "revision.serving.knative.dev", "cronworkflow.argoproj.io"} {
		if slices.Contains(names, readerOnly) {
			t.Errorf("completion offers %s, which switch cannot rewrite", readerOnly)
		}
	}
	for _, want := range []string{"deployment", "rollout.argoproj.io", "scaledjob.keda.sh"} {
		if !slices.Contains(names, want) {
			t.Errorf("completion lacks %s: %v", want, names)
		}
	}
}
