// Package oldcluster proves the framework's helpers that make a fresh
// local control plane look old (objects backdated in etcd, legacy-token
// tracking begun long ago, an audit log) against the real kube-apiserver,
// and runs kube-controller-manager's own legacy token cleaner on it as the
// oracle later tests compare forecasts with.
package oldcluster

import (
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{JSONStorage: true, Audit: true}, func(c *framework.Cluster) { cluster = c })
}
