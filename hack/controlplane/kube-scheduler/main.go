// Command kube-scheduler is the upstream scheduler (main as in
// k8s.io/kubernetes cmd/kube-scheduler/scheduler.go), built from the same
// pinned module as kube-apiserver; the local cluster runs it with
// --workloads, so pods land on kwok's fake nodes.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
