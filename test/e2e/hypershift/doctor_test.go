package hypershift

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// doctor fails a Secret whose key HyperShift cannot read (EC) and a
// signing key next to the default issuerURL, each with its fix; a rotated
// HostedCluster passes and names the kids kube-apiserver trusts.
func TestDoctorFlagsUnreadableKeyAndDefaultIssuer(t *testing.T) {
	ec, _ := keys.Generate("ec256", false)
	bad := newHostedCluster(t, "https://oidc.example.com/bad", ec.PrivatePEM)
	dflt := newHostedCluster(t, "", nil)
	if issuer, _, _ := unstructured.NestedString(dflt.get(t).Object, "spec", "issuerURL"); issuer != hypershift.DefaultIssuerURL {
		t.Fatalf("the CRD did not default issuerURL: %q", issuer)
	}
	good := newHostedCluster(t, "https://oidc.example.com/good", nil)
	kid := strings.TrimSpace(run("rotate", "hosted-cluster", "prod", "--yes", "-n", good.ns, "--timeout", "2m").Must(t, 0).Stdout)

	st := run("doctor", "-o", "json").DoctorChecks(t)
	if c := st["hypershift "+bad.ns+"/prod"].String(); !strings.HasPrefix(c, "fail") || !strings.Contains(c, "not a PKCS#1 RSA private key") ||
		!strings.Contains(c, "fix: rotate to a new RSA key: kubectl bound-token rotate hosted-cluster prod -n "+bad.ns+" --force") {
		t.Errorf("EC key: %s", c)
	}
	if c := st["hypershift "+dflt.ns+"/prod"].String(); !strings.HasPrefix(c, "fail") || !strings.Contains(c, "default https://kubernetes.default.svc") ||
		!strings.Contains(c, "fix: remove spec.serviceAccountSigningKey, or recreate the HostedCluster with its own spec.issuerURL") {
		t.Errorf("default issuer: %s", c)
	}
	if c := st["hypershift "+good.ns+"/prod"].String(); !strings.HasPrefix(c, "pass") || !strings.Contains(c, "trusted kids: "+kid+", "+good.old.KeyID) {
		t.Errorf("rotated: %s", c)
	}

	// rotate refuses the default issuer too: exit 1, nothing written.
	secrets := strings.Join(dflt.secrets(t), ",")
	run("rotate", "hosted-cluster", "prod", "--yes", "-n", dflt.ns).Must(t, 1, "is the default https://kubernetes.default.svc")
	if got := strings.Join(dflt.secrets(t), ","); got != secrets {
		t.Errorf("Secrets %s, were %s", got, secrets)
	}
}

// Someone who may rotate the key but not read the control-plane namespace
// gets one clear line, exit 1, nothing written.
func TestForbiddenControlPlaneNamespace(t *testing.T) {
	h := newHostedCluster(t, "https://oidc.example.com/prod", nil)
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "rotator"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"hypershift.openshift.io"}, Resources: []string{"hostedclusters"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create"}},
	}}
	if _, err := cluster.Client.RbacV1().Roles(h.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.RbacV1().RoleBindings(h.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rotator"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "rotator"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "rotator"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secrets := strings.Join(h.secrets(t), ",")
	rv := h.get(t).GetResourceVersion()
	r := run("rotate", "hosted-cluster", "prod", "--yes", "-n", h.ns, "--as", "rotator", "--timeout", "20s").
		Must(t, 1, `not allowed to list deployments in the control-plane namespace "`+h.cp+`"`, "nothing was changed")
	if strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("want one line:\n%s", r.Stderr)
	}
	if strings.Join(h.secrets(t), ",") != secrets || h.get(t).GetResourceVersion() != rv {
		t.Error("something was written")
	}
}

// The CRD installed here is HyperShift's own, so a stand-in that takes
// anything cannot slip back in: it refuses a changed issuerURL, one that is
// not a URL, fewer than four services, a missing required field, managed
// etcd without its managed settings (why framework.HostedClusterSpec sets
// them); and prunes unknown fields.
func TestHostedClusterCRDKeepsTheRealRules(t *testing.T) {
	h := newHostedCluster(t, "https://oidc.example.com/prod", nil)
	ctx := context.Background()
	res := h.dyn.Resource(hypershift.HostedClusterGVR).Namespace(h.ns)
	for _, tc := range []struct{ patch, want string }{
		{`{"spec":{"issuerURL":"https://other.example.com"}}`, "issuerURL is immutable"},
		{`{"spec":{"services":[{"service":"APIServer","servicePublishingStrategy":{"type":"LoadBalancer"}}]}}`, "at least 4 items"},
	} {
		if _, err := res.Patch(ctx, "prod", "application/merge-patch+json", []byte(tc.patch), metav1.PatchOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.patch, err, tc.want)
		}
	}
	mk := func(name string, spec map[string]any) error {
		_, err := res.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
			"metadata": map[string]any{"name": name}, "spec": spec}}, metav1.CreateOptions{})
		return err
	}
	notURL := framework.HostedClusterSpec("not a url", "")
	if err := mk("bad-url", notURL); err == nil || !strings.Contains(err.Error(), "issuerURL must be a valid absolute URL") {
		t.Errorf("non-URL issuer: %v", err)
	}
	noRelease := framework.HostedClusterSpec("https://a.example.com", "")
	delete(noRelease, "release")
	if err := mk("no-release", noRelease); err == nil || !strings.Contains(err.Error(), "spec.release: Required value") {
		t.Errorf("no release: %v", err)
	}
	bareEtcd := framework.HostedClusterSpec("https://a.example.com", "")
	bareEtcd["etcd"] = map[string]any{"managementType": "Managed"}
	if err := mk("bare-etcd", bareEtcd); err == nil || !strings.Contains(err.Error(), "Only managed configuration must be set when managementType is Managed") {
		t.Errorf("managed etcd without spec.etcd.managed: %v", err)
	}
	// Unknown fields are pruned, in spec (there is no spec.oidcProviders for
	// the service-account issuer) and in serviceAccountSigningKey (a
	// LocalObjectReference: name only).
	if _, err := res.Patch(ctx, "prod", "application/merge-patch+json", []byte(`{"spec":{"oidcProviders":[{"x":1}],"serviceAccountSigningKey":{"name":"sa-key","key":"x"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	spec, _, _ := unstructured.NestedMap(h.get(t).Object, "spec")
	if _, ok := spec["oidcProviders"]; ok {
		t.Error("spec.oidcProviders kept: the real schema prunes it")
	}
	if sk := spec["serviceAccountSigningKey"].(map[string]any); len(sk) != 1 {
		t.Errorf("serviceAccountSigningKey %v", sk)
	}
}
