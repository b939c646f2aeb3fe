// Command kubectl-bound_token is the krew plugin binary; everything lives in pkg/.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/bound-token/kubectl-bound-token/pkg/cmd"
	"github.com/bound-token/kubectl-bound-token/pkg/startup"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	root := cmd.NewCmdBoundToken(streams)
	startup.Resume()
	os.Exit(cmd.Execute(root, streams.ErrOut))
}
