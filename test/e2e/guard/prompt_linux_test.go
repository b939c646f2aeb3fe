package guard

import (
	"io"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestInstallAndUninstallAsk: both change the cluster, so they ask on a
// terminal and change nothing unless the answer is y or yes; without a
// terminal and without --yes they refuse (exit 2) before any change.
func TestInstallAndUninstallAsk(t *testing.T) {
	installed(t)
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	present := func() bool {
		_, err := dyn.Resource(guard.PolicyResource(wantVersion())).Get(ctx, guard.PolicyName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	withInput := func(in io.Reader, args ...string) framework.Result {
		return framework.Run(in, cluster.Kubeconfig, args...)
	}
	typed := func(s string, args ...string) framework.Result {
		master, tty := framework.OpenPTY(t)
		if _, err := master.WriteString(s); err != nil {
			t.Fatal(err)
		}
		r := withInput(tty, args...)
		if !strings.Contains(r.Stderr, "Proceed? [y/N] ") {
			t.Fatalf("%v: not asked\n%s", args, r.Stderr)
		}
		return r
	}
	// Always installed again at the end, for the other tests.
	t.Cleanup(func() { run(t, "guard", "install", "--yes") })

	for _, step := range []struct {
		name    string
		r       func() framework.Result
		code    int
		in      string
		present bool
	}{
		{"uninstall without a terminal", func() framework.Result { return withInput(strings.NewReader(""), "guard", "uninstall") }, 2, "add --yes to confirm", true},
		{"uninstall, answered n", func() framework.Result { return typed("n\n", "guard", "uninstall") }, 1, "not confirmed: nothing changed", true},
		{"uninstall, answered y", func() framework.Result { return typed("y\n", "guard", "uninstall") }, 0, "", false},
		{"install without a terminal", func() framework.Result { return withInput(strings.NewReader(""), "guard", "install") }, 2, "add --yes to confirm", false},
		{"install, answered nothing", func() framework.Result { return typed("\n", "guard", "install") }, 1, "not confirmed: nothing changed", false},
		{"install, answered yes", func() framework.Result { return typed("yes\n", "guard", "install") }, 0, "the guard acts:", true},
	} {
		r := step.r()
		if r.Code != step.code || !strings.Contains(r.Stderr, step.in) {
			t.Fatalf("%s: exit %d, want %d with %q\n%s%s", step.name, r.Code, step.code, step.in, r.Stdout, r.Stderr)
		}
		if p := present(); p != step.present {
			t.Fatalf("%s: policy present %v, want %v", step.name, p, step.present)
		}
	}
}
