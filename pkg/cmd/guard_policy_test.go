package cmd

import (
	"encoding/json"
	"strings"
	"testing"
)

// The guard's commands offline: what needs no cluster works without one,
// and bad flags are refused before anything is read.
func TestGuardPolicyCommandsOffline(t *testing.T) {
	out, errOut, code := run(t, cmdRun{}, "", "guard", "install", "--dry-run=client", "-o", "yaml")
	if code != 0 || strings.Count(out, "\n---\n") != 1 || !strings.HasPrefix(out, "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicy\n") ||
		!strings.Contains(out, "kind: MutatingAdmissionPolicyBinding\n") {
		t.Fatalf("--dry-run=client -o yaml: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = run(t, cmdRun{}, "", "guard", "install", "--dry-run=client", "-o", "json", "--policy-api-version", "v1beta1")
	var l struct {
		Kind  string
		Items []struct{ APIVersion, Kind string }
	}
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Kind != "List" || len(l.Items) != 2 ||
		l.Items[0].APIVersion != "admissionregistration.k8s.io/v1beta1" || l.Items[1].Kind != "MutatingAdmissionPolicyBinding" {
		t.Fatalf("-o json: exit %d %v\n%s", code, err, out)
	}
	out, _, code = run(t, cmdRun{}, "", "guard", "install", "--dry-run=client", "-o", "name")
	if code != 0 || out != "mutatingadmissionpolicy.admissionregistration.k8s.io/bound-token-guard\nmutatingadmissionpolicybinding.admissionregistration.k8s.io/bound-token-guard\n" {
		t.Fatalf("-o name: exit %d\n%s", code, out)
	}
	out, errOut, code = run(t, cmdRun{}, "", "guard", "install", "--dry-run=client")
	if code != 0 || !strings.Contains(out, "bound-token-guard created (dry run)") || !strings.Contains(errOut, "admissionregistration.k8s.io/v1, nothing sent") {
		t.Fatalf("--dry-run=client: exit %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"guard", "install", "--dry-run=client", "--policy-api-version", "v1alpha1"}, `--policy-api-version "v1alpha1": use v1 or v1beta1`},
		{[]string{"guard", "install", "--timeout", "-1s"}, "--timeout must not be negative"},
		{[]string{"guard", "install", "-o", "xml", "--dry-run=client"}, `--output "xml" is not supported`},
		{[]string{"guard", "uninstall", "--dry-run=client"}, "use --dry-run=server"},
		{[]string{"guard", "status", "-o", "name"}, `--output "name" is not supported`},
		{[]string{"guard", "status", "extra"}, "unknown command"},
	} {
		_, errOut, code := run(t, cmdRun{}, "", tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, errOut, tc.err)
		}
	}
	// No cluster: exit 2, nothing changed.
	_, errOut, code = run(t, cmdRun{}, "", "guard", "status")
	if code != ExitUsage {
		t.Errorf("status without a cluster: exit %d\n%s", code, errOut)
	}

	for _, c := range []string{"install", "status", "uninstall"} {
		out, _, code := run(t, cmdRun{}, "", "guard", c, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "kubectl bound-token guard "+c) || !strings.Contains(out, "Exit codes:") {
			t.Errorf("guard %s --help lacks examples or exit codes:\n%s", c, out)
		}
	}
}
