package cmd

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest/fake"
	cmdtesting "k8s.io/kubectl/pkg/cmd/testing"
)

// newTestFactory is kubectl's test factory (k8s.io/kubectl/pkg/cmd/testing)
// in namespace "app": no kubeconfig, no cluster. Its REST client fails the
// test on any request; a test that expects some sets tf.Client itself.
func newTestFactory(t *testing.T) *cmdtesting.TestFactory {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace("app")
	t.Cleanup(tf.Cleanup)
	tf.Client = &fake.RESTClient{Client: fake.CreateHTTPClient(func(req *http.Request) (*http.Response, error) {
		t.Errorf("unexpected request %s %s", req.Method, req.URL.Path)
		return &http.Response{StatusCode: http.StatusInternalServerError, Body: io.NopCloser(strings.NewReader(""))}, nil
	})}
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
