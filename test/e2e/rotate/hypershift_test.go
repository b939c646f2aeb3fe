package rotate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The rotated Secret's "key" is loaded by a real kube-apiserver (a second
// local cluster started with it), whose tokens carry the kid rotate printed.
// That cluster serves no OpenShift resources, so `wait` there must say so.
func TestHyperShiftRotationKeyLoadsInKubeAPIServer(t *testing.T) {
	ns, old, d := hostedCluster(t, "clusters")
	ctx := context.Background()

	// issuerURL is immutable: asking to change it is refused, nothing created.
	run(cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", ns, "--issuer", "https://other.example.com").
		Must(t, 2, "spec.issuerURL of hostedcluster "+ns+"/prod is immutable")
	// And the server agrees (the CRD carries HyperShift's rule).
	patch := []byte(`{"spec":{"issuerURL":"https://other.example.com"}}`)
	if _, err := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Patch(ctx, "prod", "application/merge-patch+json", patch, metav1.PatchOptions{}); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("server accepted an issuerURL change: %v", err)
	}

	r := run(cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", ns, "--wait=false").Must(t, 0, "previous kid "+old.KeyID)
	kid := strings.TrimSpace(r.Stdout)
	got, _ := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Get(ctx, "prod", metav1.GetOptions{})
	name := hypershift.SigningKeyName(got)
	if name == "sa-key" || name == "" {
		t.Fatalf("spec.serviceAccountSigningKey.name = %q", name)
	}
	sec, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["old-key.pub"]) != string(old.PublicPEM) {
		t.Fatalf("old-key.pub is not the previous public key:\n%s", sec.Data["old-key.pub"])
	}
	if _, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "sa-key", metav1.GetOptions{}); err != nil {
		t.Fatalf("old Secret gone: %v", err)
	}
	ks, err := jwt.ParsePEM(sec.Data["key"])
	if err != nil || ks.Keys[0].ID != kid {
		t.Fatalf("Secret key kid %v, printed %s (%v)", ks, kid, err)
	}

	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, sec.Data["key"], 0o600); err != nil {
		t.Fatal(err)
	}
	hosted, err := framework.Start(framework.Options{Name: fmt.Sprintf("rotate-hosted-%d", os.Getpid()), KeyFile: keyFile, Issuer: "https://oidc.example.com/prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer hosted.Stop()
	tok := run(hosted.Kubeconfig, "create", "default", "-n", "default").Must(t, 0)
	dec := run(hosted.Kubeconfig, "decode", "-o", "json", strings.TrimSpace(tok.Stdout)).Must(t, 0)
	if !strings.Contains(dec.Stdout, `"kid": "`+kid+`"`) {
		t.Fatalf("token from a kube-apiserver using the rotated key does not carry kid %s:\n%s", kid, dec.Stdout)
	}

	// Rotating again with a key file: the new Secret's old-key.pub is the
	// key just rotated in.
	next, _ := keys.Generate("rsa2048", true)
	nextFile := filepath.Join(t.TempDir(), "next.key")
	_ = os.WriteFile(nextFile, next.PrivatePEM, 0o600)
	r2 := run(cluster.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", ns, "--key", nextFile, "--secret-name", "sa-key-3", "--wait=false").Must(t, 0)
	if strings.TrimSpace(r2.Stdout) != next.KeyID {
		t.Fatalf("printed %s, want %s", r2.Stdout, next.KeyID)
	}
	s3, _ := cluster.Client.CoreV1().Secrets(ns).Get(ctx, "sa-key-3", metav1.GetOptions{})
	if s3.Data["key"] == nil || !strings.HasPrefix(string(s3.Data["key"]), "-----BEGIN RSA PRIVATE KEY-----") {
		t.Fatal("the PKCS#8 key was not stored as PKCS#1")
	}
	if prev, err := jwt.ParsePEM(s3.Data["old-key.pub"]); err != nil || prev.Keys[0].ID != kid {
		t.Fatalf("old-key.pub of the third key: %v", err)
	}

	// Not OpenShift: wait explains, exit 2.
	run(hosted.Kubeconfig, "wait", "--timeout", "10s").Must(t, 2, "not OpenShift")
	run(hosted.Kubeconfig, "rotate", "issuer", "https://x.example.com", "--yes").Must(t, 2, "not OpenShift")
	run(hosted.Kubeconfig, "rotate", "hosted-cluster", "prod", "--yes", "-n", "default").Must(t, 2, "not a HyperShift management cluster")
}

// hostedCluster makes HostedCluster "prod" in a new namespace, with
// spec.issuerURL set and signing with a fresh RSA key in Secret "sa-key".
func hostedCluster(t *testing.T, prefix string) (ns string, old *keys.Pair, d dynamic.Interface) {
	t.Helper()
	cluster.InstallCRD(t, "hostedclusters.hypershift.openshift.io", false)
	d, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns = cluster.CreateNamespace(t, prefix)
	old, err = keys.Generate("rsa2048", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sa-key"}, Data: map[string][]byte{"key": old.PrivatePEM}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
		"metadata": map[string]any{"name": "prod", "namespace": ns},
		"spec":     framework.HostedClusterSpec("https://oidc.example.com/prod", "sa-key"),
	}}
	if _, err := d.Resource(hypershift.HostedClusterGVR).Namespace(ns).Create(ctx, hc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns, old, d
}
