// Package rolloutse2e runs the real Argo Rollouts controller
// (framework.StartRolloutsController) on the workloads rig (workload
// controllers, kube-scheduler, kwok nodes), so that a Rollout is rolled
// out as on a real cluster: for `switch` and `restore` on Rollouts (issue
// #25).
package rolloutse2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{Name: fmt.Sprintf("rollouts-%d", os.Getpid()), Workloads: true},
		func(c *framework.Cluster) { cluster = c })
}
