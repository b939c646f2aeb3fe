package startup

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

const plugin = "github.com/bound-token/kubectl-bound-token/cmd/kubectl-bound_token"

// heavyAtInit are packages whose initialisation Go would run in every
// process, `version` and a one-token `verify` included (measured with
// GODEBUG=inittrace=1; the start-up rows of bench/rows.txt): kubectl's
// api-resources command alone allocated 4.4 MB at init. Completion has its
// own helpers in pkg/cmd/completion.go instead.
var heavyAtInit = []string{
	"k8s.io/kubectl/pkg/util/completion",
	"k8s.io/kubectl/pkg/cmd/apiresources",
	"k8s.io/kubectl/pkg/cmd/get",
}

func TestNothingHeavyIsLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", plugin).Output()
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

// `version --client` runs without a single collection: this package's init comes
// before client-go's, and no "gc N" line of GODEBUG=gctrace=1 shows up.
// Without the pause, most runs collected once, just after the inits
// (their ~4 MB reach the first collection's 4 MB goal).
func TestVersionRunsWithoutACollection(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kubectl-bound_token")
	if out, err := exec.Command("go", "build", "-o", bin, plugin).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for run := 0; run < 3; run++ {
		c := exec.Command(bin, "version", "--client")
		c.Env = append(os.Environ(), "GODEBUG=inittrace=1,gctrace=1", "GOGC=")
		var trace strings.Builder
		c.Stderr = &trace
		if err := c.Run(); err != nil {
			t.Fatalf("version: %v\n%s", err, trace.String())
		}
		us, clientGo := -1, -1
		for i, l := range strings.Split(trace.String(), "\n") {
			switch {
			case strings.HasPrefix(l, "init github.com/bound-token/kubectl-bound-token/pkg/startup "):
				us = i
			case strings.HasPrefix(l, "init k8s.io/client-go/kubernetes/scheme "):
				clientGo = i
			case strings.HasPrefix(l, "gc "):
				t.Fatalf("run %d collected: %s", run, l)
			}
		}
		if us < 0 || clientGo < 0 || us > clientGo {
			t.Fatalf("pkg/startup initialised at line %d, client-go's scheme at %d: want pkg/startup first", us, clientGo)
		}
	}
}

// Until Resume the collector is off (this test binary ran this package's
// init too); Resume gives back the GOGC the process started with.
func TestResumeRestoresGOGC(t *testing.T) {
	if os.Getenv("STARTUP_CHILD") == "" {
		c := exec.Command(os.Args[0], "-test.run=^TestResumeRestoresGOGC$")
		c.Env = append(os.Environ(), "STARTUP_CHILD=1", "GOGC=37")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("with GOGC=37: %v\n%s", err, out)
		}
		return
	}
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("before Resume: GC percent %d, want -1 (off)", got)
	}
	Resume()
	want, _ := strconv.Atoi(os.Getenv("GOGC"))
	if got := debug.SetGCPercent(want); got != want {
		t.Errorf("after Resume: GC percent %d, want GOGC=%d", got, want)
	}
}
