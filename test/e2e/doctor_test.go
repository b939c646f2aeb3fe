package e2e

import (
	"os"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// doctorChecks runs doctor -o json and returns its checks by name.
func doctorChecks(t *testing.T, args ...string) map[string]framework.DoctorCheck {
	t.Helper()
	r := run(t, "", append([]string{"doctor", "-o", "json"}, args...)...)
	if r.Code == 2 {
		t.Fatalf("doctor checked nothing (exit 2):\n%s%s", r.Stdout, r.Stderr)
	}
	return r.DoctorChecks(t)
}

// doctor's release checks on the real control plane: the features come
// from what kube-apiserver serves and exports, the version is shown.
func TestDoctorReleaseFeatures(t *testing.T) {
	ns := cluster.CreateNamespace(t, "doctor")
	sv, err := cluster.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	// The release the harness built (hack/local-cluster.sh: KUBE_VERSION,
	// 1.37 by default): what the cluster serves differs between them.
	release := os.Getenv("KUBE_VERSION")
	if release == "" {
		release = "1.37"
	}
	want := map[string]string{"1.37": "v1.37.2", "1.34": "v1.34.4"}[release]
	if want == "" {
		t.Fatalf("KUBE_VERSION=%s: this test knows 1.37 and 1.34", release)
	}
	if sv.GitVersion != want {
		t.Fatalf("KUBE_VERSION=%s but the cluster says %s", release, sv.GitVersion)
	}

	t.Setenv("KUBECTL_PATH", "/opt/kubectl-1.37/kubectl") // as kubectl 1.37 sets it for a plugin
	checks := doctorChecks(t, "-n", ns)
	checks["release"].Must(t, "pass", "kube-apiserver "+want+" (/version)", "launched by kubectl /opt/kubectl-1.37/kubectl")
	switch release {
	case "1.37":
		checks["admission-policies"].Must(t, "pass", "MutatingAdmissionPolicy served at admissionregistration.k8s.io/v1:", "inside kube-apiserver")
	case "1.34":
		// Beta in 1.34, behind a gate and --runtime-config the harness does not set.
		checks["admission-policies"].Must(t, "warn", "MutatingAdmissionPolicy not served", "guard watch")
	}
	// The harness signs with key files (--service-account-signing-key-file):
	// the signer's series are absent from /metrics.
	checks["external-signer"].Must(t, "pass", "external signer: not in use")
	if c, ok := checks["external-signer-legacy-tokens"]; ok {
		t.Errorf("legacy tokens judged against a signer that is not in use: %+v", c)
	}

	// Run directly, or by kubectl before 1.37: no KUBECTL_PATH.
	if err := os.Unsetenv("KUBECTL_PATH"); err != nil {
		t.Fatal(err)
	}
	doctorChecks(t, "-n", ns)["release"].Must(t, "pass", "no KUBECTL_PATH: run directly or by a kubectl older than 1.37")

	// Who may not read /metrics learns nothing about the signer: "unknown",
	// a warning, never "not in use". Discovery is open to every
	// authenticated user (system:discovery), so admission policies are
	// still answered.
	checks = doctorChecks(t, "-n", ns, "--as", "system:serviceaccount:"+ns+":default")
	checks["external-signer"].Must(t, "warn", "external signer: unknown", "/metrics: HTTP 403 Forbidden")
	if release == "1.37" {
		checks["admission-policies"].Must(t, "pass", "admissionregistration.k8s.io/v1:")
	}
}
