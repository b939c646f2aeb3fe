package framework

import (
	"bytes"
	"io"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/bound-token/kubectl-bound-token/pkg/cmd"
)

// RunPlugin runs `kubectl bound-token --kubeconfig KUBECONFIG ARGS...`
// in-process, as main does, with in as its standard input, and returns
// what a user would see: stdout, stderr and the exit code.
func RunPlugin(in io.Reader, kubeconfig string, args ...string) (stdout, stderr string, code int) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	root := cmd.NewCmdBoundToken(genericiooptions.IOStreams{In: in, Out: out, ErrOut: errOut})
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	code = cmd.Execute(root, errOut)
	return out.String(), errOut.String(), code
}
