// Package e2e runs the plugin's commands in-process against a real
// kube-apiserver, etcd and kube-controller-manager started once for the
// package by hack/local-cluster.sh.
package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: ""}, func(c *framework.Cluster) { cluster = c })
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes `kubectl bound-token ARGS` against the test cluster, the way
// main does, and returns what a user would see.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var r result
	r.stdout, r.stderr, r.code = framework.RunPlugin(bytes.NewBufferString(stdin), cluster.Kubeconfig, args...)
	return r
}

func (r result) mustCode(t *testing.T, want int) result {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
	return r
}

func (r result) stderrHas(t *testing.T, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not contain %q:\n%s", s, r.stderr)
		}
	}
}

func (r result) stdoutHas(t *testing.T, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout does not contain %q:\n%s", s, r.stdout)
		}
	}
}
