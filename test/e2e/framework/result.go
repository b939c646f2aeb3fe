package framework

import (
	"io"
	"strings"
	"testing"
	"time"
)

// This file holds what every suite asks of one in-process run of the
// plugin (RunPlugin): its output, its exit code and the checks made on
// them, so that each suite's run helper only says which kubeconfig and
// standard input it runs with.

// Result is what a user sees of one run of the plugin, and how long it took.
type Result struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

// Run runs `kubectl bound-token --kubeconfig KUBECONFIG ARGS...` in-process
// (RunPlugin) with in as its standard input, and times it.
func Run(in io.Reader, kubeconfig string, args ...string) Result {
	var r Result
	start := time.Now()
	r.Stdout, r.Stderr, r.Code = RunPlugin(in, kubeconfig, args...)
	r.Took = time.Since(start)
	return r
}

// MustCode stops the test unless the run exited with want.
func (r Result) MustCode(t testing.TB, want int) Result {
	t.Helper()
	if r.Code != want {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.Code, want, r.Stdout, r.Stderr)
	}
	return r
}

// Must is MustCode, then StderrHas.
func (r Result) Must(t testing.TB, code int, stderrHas ...string) Result {
	t.Helper()
	r.MustCode(t, code)
	r.StderrHas(t, stderrHas...)
	return r
}

// StderrHas fails the test for each of subs stderr does not contain.
func (r Result) StderrHas(t testing.TB, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("stderr does not contain %q:\n%s", s, r.Stderr)
		}
	}
}

// StdoutHas fails the test for each of subs stdout does not contain.
func (r Result) StdoutHas(t testing.TB, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("stdout does not contain %q:\n%s", s, r.Stdout)
		}
	}
}
