// Package issuer tests the self-hosted issuer workflow on a real control
// plane: a key from `keys generate`, an issuer served by a local HTTPS
// server (test CA) from what `oidc export` writes, and doctor.
package issuer

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	keyDir  string
	keyID   string
	siteDir string
	caFile  string
	issuer  string
)

func run(kubeconfig, stdin string, args ...string) framework.Result {
	return framework.Run(strings.NewReader(stdin), kubeconfig, args...)
}

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "issuer-e2e-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	keyDir, siteDir = filepath.Join(tmp, "keys"), filepath.Join(tmp, "site")
	// The cluster signs with a key made by our own command.
	r := run(filepath.Join(tmp, "none"), "", "keys", "generate", "--out-dir", keyDir)
	if r.Code != 0 {
		fmt.Fprintf(os.Stderr, "keys generate: %s", r.Stderr)
		os.Exit(1)
	}
	keyID = strings.TrimSpace(r.Stdout)
	// The issuer is a static HTTPS site: the folder oidc export writes.
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(siteDir)))
	defer srv.Close()
	caFile = filepath.Join(tmp, "ca.crt")
	_ = os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	issuer = srv.URL + "/cluster-a"
	siteDir = filepath.Join(siteDir, "cluster-a")
	framework.Main(m, framework.Options{Name: fmt.Sprintf("issuer-%d", os.Getpid()), KeyFile: filepath.Join(keyDir, keys.PrivateFile), Issuer: issuer},
		func(c *framework.Cluster) { cluster = c })
}

func clusterJWKS(t *testing.T, c *framework.Cluster) []map[string]any {
	t.Helper()
	b, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Keys
}

func ourJWKS(t *testing.T, kubeconfig string, files ...string) []map[string]any {
	t.Helper()
	r := run(kubeconfig, "", append([]string{"keys", "jwks"}, files...)...)
	if r.Code != 0 {
		t.Fatalf("keys jwks: %s", r.Stderr)
	}
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Keys
}

func sameKeys(t *testing.T, a, b []map[string]any, fields ...string) {
	t.Helper()
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("want one key each, got %d and %d", len(a), len(b))
	}
	for _, f := range fields {
		if a[0][f] == nil || a[0][f] != b[0][f] {
			t.Errorf("%s: cluster %v, ours %v", f, a[0][f], b[0][f])
		}
	}
}

func TestKeysJWKSEqualsClusterJWKS(t *testing.T) {
	sameKeys(t, clusterJWKS(t, cluster), ourJWKS(t, cluster.Kubeconfig, filepath.Join(keyDir, keys.PublicFile)), "kid", "kty", "alg", "use", "n", "e")
	if got := clusterJWKS(t, cluster)[0]["kid"]; got != keyID {
		t.Errorf("keys generate printed kid %s, cluster uses %v", keyID, got)
	}
	// The private key file gives the same JWKS (only the public half).
	sameKeys(t, clusterJWKS(t, cluster), ourJWKS(t, cluster.Kubeconfig, filepath.Join(keyDir, keys.PrivateFile)), "kid", "n", "e")
}

func TestKeysJWKSEqualsClusterJWKSForECKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ec")
	if r := run(cluster.Kubeconfig, "", "keys", "generate", "--out-dir", dir, "--type", "ec256", "--pkcs8"); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	ec, err := framework.Start(framework.Options{Name: fmt.Sprintf("issuer-ec-%d", os.Getpid()), KeyFile: filepath.Join(dir, keys.PrivateFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Stop()
	sameKeys(t, clusterJWKS(t, ec), ourJWKS(t, ec.Kubeconfig, filepath.Join(dir, keys.PublicFile)), "kid", "kty", "alg", "crv", "x", "y")
	// And a token from that cluster verifies offline with ES256.
	tok := run(ec.Kubeconfig, "", "create", "default", "-n", "default")
	v := run(ec.Kubeconfig, tok.Stdout, "verify", "-", "--public-key", filepath.Join(dir, keys.PublicFile))
	if v.Code != 0 || !strings.Contains(v.Stdout, "ES256") {
		t.Fatalf("ES256 token: %d %s", v.Code, v.Stdout)
	}
}

func TestTokenVerifiesAgainstKeysJWKSAndExportedSite(t *testing.T) {
	tok := run(cluster.Kubeconfig, "", "create", "default", "-n", "default")
	if tok.Code != 0 {
		t.Fatal(tok.Stderr)
	}
	jwksFile := filepath.Join(t.TempDir(), "keys.json")
	r := run(cluster.Kubeconfig, "", "keys", "jwks", filepath.Join(keyDir, keys.PublicFile))
	_ = os.WriteFile(jwksFile, []byte(r.Stdout), 0o600)
	if v := run(cluster.Kubeconfig, tok.Stdout, "verify", "-", "--jwks", jwksFile, "--issuer", issuer); v.Code != 0 {
		t.Fatalf("verify --jwks: %s", v.Stdout)
	}

	for _, layout := range []string{"kube", "keys.json"} {
		t.Run(layout, func(t *testing.T) {
			os.RemoveAll(siteDir)
			e := run(cluster.Kubeconfig, "", "oidc", "export", "--out-dir", siteDir, "--layout", layout)
			if e.Code != 0 {
				t.Fatalf("oidc export: %s", e.Stderr)
			}
			var d struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			b, _ := os.ReadFile(filepath.Join(siteDir, ".well-known", "openid-configuration"))
			_ = json.Unmarshal(b, &d)
			if d.Issuer != issuer || !strings.HasPrefix(d.JWKSURI, issuer+"/") {
				t.Fatalf("exported discovery: %s", b)
			}
			v := run(cluster.Kubeconfig, tok.Stdout, "verify", "-", "--oidc-issuer", issuer, "--certificate-authority", caFile)
			if v.Code != 0 {
				t.Fatalf("verify --oidc-issuer: %d %s%s", v.Code, v.Stdout, v.Stderr)
			}
			// Existing files are not replaced silently.
			if again := run(cluster.Kubeconfig, "", "oidc", "export", "--out-dir", siteDir, "--layout", layout); again.Code == 0 {
				t.Fatal("export overwrote existing files without --overwrite")
			}
		})
	}
}

func doctorJSON(t *testing.T, args ...string) (map[string]string, framework.Result) {
	t.Helper()
	r := run(cluster.Kubeconfig, "", append([]string{"doctor", "-o", "json"}, args...)...)
	st := map[string]string{}
	for name, c := range r.DoctorChecks(t) {
		st[name] = c.String()
	}
	return st, r
}

func TestDoctor(t *testing.T) {
	// Issuer documents not published: a warning with the fix, no failure.
	os.RemoveAll(siteDir)
	st, r := doctorJSON(t, "--issuer-ca", caFile)
	if r.Code != 0 || !strings.HasPrefix(st["public-discovery"], "warn") || !strings.Contains(st["public-discovery"], "oidc export") {
		t.Fatalf("unpublished issuer: exit %d, %v", r.Code, st)
	}
	for _, name := range []string{"api", "token-request", "discovery", "jwks", "node-binding"} {
		if !strings.HasPrefix(st[name], "pass") {
			t.Errorf("%s: %s", name, st[name])
		}
	}
	// Published: every check passes.
	if e := run(cluster.Kubeconfig, "", "oidc", "export", "--out-dir", siteDir); e.Code != 0 {
		t.Fatal(e.Stderr)
	}
	st, r = doctorJSON(t, "--issuer-ca", caFile)
	if r.Code != 0 || !strings.HasPrefix(st["public-discovery"], "pass") {
		t.Fatalf("published issuer: exit %d, %v", r.Code, st)
	}
	h := run(cluster.Kubeconfig, "", "doctor", "--issuer-ca", caFile)
	if h.Code != 0 || !strings.Contains(h.Stdout, "PASS  public-discovery") {
		t.Fatalf("human doctor output:\n%s", h.Stdout)
	}
}

var hcGVR = schema.GroupVersionResource{Group: "hypershift.openshift.io", Version: "v1beta1", Resource: "hostedclusters"}

func TestDoctorHyperShiftSigningKey(t *testing.T) {
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	// HyperShift's own CRD, from its API module (modcache.HyperShiftAPIVersion).
	cluster.InstallCRD(t, "hostedclusters.hypershift.openshift.io", true)
	ns := cluster.CreateNamespace(t, "clusters")
	good, _ := keys.Generate("rsa2048", false)
	other, _ := keys.Generate("rsa2048", false)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sa-signing-key"},
		Data:       map[string][]byte{"key": good.PrivatePEM, "key.pub": good.PublicPEM},
	}
	if _, err := cluster.Client.CoreV1().Secrets(ns).Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
		"metadata": map[string]any{"name": "a", "namespace": ns},
		"spec":     framework.HostedClusterSpec("https://oidc.example.com/a", "sa-signing-key"),
	}}
	if _, err := dyn.Resource(hcGVR).Namespace(ns).Create(context.Background(), hc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	name := "hypershift " + ns + "/a"
	st, r := doctorJSON(t)
	if !strings.HasPrefix(st[name], "pass") {
		t.Fatalf("matching keys: exit %d %q", r.Code, st[name])
	}
	secret.Data["key.pub"] = other.PublicPEM
	if _, err := cluster.Client.CoreV1().Secrets(ns).Update(context.Background(), secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, r = doctorJSON(t)
	if r.Code != 1 || !strings.HasPrefix(st[name], "fail") || !strings.Contains(st[name], "not the public half") {
		t.Fatalf("mismatched keys: exit %d %q", r.Code, st[name])
	}
}
