package cmd

import (
	"os/exec"
	"strings"
	"testing"
)

// heavyAtInit are packages whose initialisation Go would run in every
// process, `version` and a one-token `verify` included (measured with
// GODEBUG=inittrace=1; the start-up rows of bench/rows.txt): kubectl's
// api-resources command alone allocated 4.4 MB at init. Completion has its
// own helpers in completion.go instead.
var heavyAtInit = []string{
	"k8s.io/kubectl/pkg/util/completion",
	"k8s.io/kubectl/pkg/cmd/apiresources",
	"k8s.io/kubectl/pkg/cmd/get",
}

func TestNothingHeavyIsLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/bound-token/kubectl-bound-token/cmd/kubectl-bound_token").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	for _, p := range heavyAtInit {
		if deps[p] {
			t.Errorf("the plugin links %s, whose init runs in every command; see pkg/cmd/completion.go", p)
		}
	}
}
