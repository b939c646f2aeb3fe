package cmd

import (
	"io"
	"testing"

	"github.com/spf13/cobra"
	cmdtesting "k8s.io/kubectl/pkg/cmd/testing"
)

// newTestFactory is kubectl's test factory (k8s.io/kubectl/pkg/cmd/testing)
// in namespace "app": no kubeconfig, no cluster.
func newTestFactory(t *testing.T) *cmdtesting.TestFactory {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace("app")
	t.Cleanup(tf.Cleanup)
	return tf
}

// execute runs one command as main does (flag errors are usage errors,
// errors print as one "error: " line) and returns its exit code.
func execute(cmd *cobra.Command, errOut io.Writer, args ...string) int {
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(flagError)
	return Execute(cmd, errOut)
}
