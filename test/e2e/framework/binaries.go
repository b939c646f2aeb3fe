package framework

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/peakrss"
)

// BuildPlugin builds kubectl-bound_token into dir as `make build` does
// (CGO off, -trimpath, stripped) and returns its path.
func BuildPlugin(dir string) (string, error) {
	repo, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kubectl-bound_token")
	c := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/kubectl-bound_token")
	c.Dir, c.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// PluginBinary builds the plugin once for the cluster (BuildPlugin), for
// the tests that kill it, time it or run it as a process, into the
// cluster's folder (removed when the cluster stops), and returns its path.
func (c *Cluster) PluginBinary(t testing.TB) string {
	t.Helper()
	c.plugin.once.Do(func() { c.plugin.path, c.plugin.err = BuildPlugin(c.Dir) })
	if c.plugin.err != nil {
		t.Fatal(c.plugin.err)
	}
	return c.plugin.path
}

// ControlPlaneBinary is the path of one of the cached control-plane
// binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kubectl, kwok), built by hack/build-controlplane.sh when missing.
func ControlPlaneBinary(name string) (string, error) {
	repo, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(repo, "hack", "build-controlplane.sh")).Output()
	if err != nil {
		return "", fmt.Errorf("hack/build-controlplane.sh: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return filepath.Join(lines[len(lines)-1], name), nil
}

// Process is one finished run of a binary.
type Process struct {
	Took           time.Duration
	PeakRSS        int64 // bytes
	Stdout, Stderr string
}

// RunProcess runs a binary to its end and measures its wall time and peak
// RSS (polled from /proc, see peakrss.Watch for why not rusage; 0 when the
// process ended before the first read, which a run as short as `version`
// can). A non-zero exit is an error that carries stderr.
func RunProcess(stdin, name string, args ...string) (Process, error) {
	c := exec.Command(name, args...)
	c.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	if err := c.Start(); err != nil {
		return Process{}, err
	}
	stop := peakrss.Watch(c.Process.Pid)
	err := c.Wait()
	p := Process{Took: time.Since(start), PeakRSS: stop(), Stdout: out.String(), Stderr: errOut.String()}
	if err != nil {
		return p, fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, errOut.String())
	}
	return p, nil
}

// MeasureProcess is RunProcess for a benchmark: a failed run, or one whose
// peak RSS could not be read, fails tb.
func MeasureProcess(tb testing.TB, name string, args ...string) Process {
	tb.Helper()
	p, err := RunProcess("", name, args...)
	if err != nil {
		tb.Fatal(err)
	}
	if p.PeakRSS == 0 {
		tb.Fatalf("%s: no peak RSS read", filepath.Base(name))
	}
	return p
}

// BuildCeiling builds test/e2e/migrate/ceiling, the minimal client-go
// program the migrate and scale benchmarks compare the plugin with, into
// a temporary folder of tb.
func BuildCeiling(tb testing.TB) string {
	tb.Helper()
	repo, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), "ceiling")
	c := exec.Command("go", "build", "-o", out, "./test/e2e/migrate/ceiling")
	c.Dir = repo
	if msg, err := c.CombinedOutput(); err != nil {
		tb.Fatalf("build ceiling: %v\n%s", err, msg)
	}
	return out
}
