// Package e2e runs the plugin's commands in-process against a real
// kube-apiserver, etcd and kube-controller-manager started once for the
// package by hack/local-cluster.sh.
package e2e

import (
	"bytes"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: ""}, func(c *framework.Cluster) { cluster = c })
}

// run executes `kubectl bound-token ARGS` against the test cluster, the way
// main does, and returns what a user would see.
func run(t *testing.T, stdin string, args ...string) framework.Result {
	t.Helper()
	return framework.Run(bytes.NewBufferString(stdin), cluster.Kubeconfig, args...)
}
