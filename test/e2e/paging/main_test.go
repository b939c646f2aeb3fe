// Package paging tests the audit's paged LIST of Secrets when its continue
// token expires midway, on a real kube-apiserver that serves lists from
// etcd (--watch-cache=false, as clusters that turn the cache off for
// Secrets do): an etcd compaction between two pages makes the next page
// 410 Gone, and the plugin must go on with the continue token the error
// carries instead of starting over or failing.
package paging

import (
	"context"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

func TestMain(m *testing.M) {
	framework.Main(m, framework.Options{APIServerArgs: []string{"--watch-cache=false"}, TrackingSince: framework.DaysAgo(400)},
		func(c *framework.Cluster) { cluster = c })
}
