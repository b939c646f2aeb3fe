// Command kube-controller-manager is the upstream controller manager; the local
// cluster runs only its service-account controllers, which fill legacy token
// Secrets the way a real cluster does.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
