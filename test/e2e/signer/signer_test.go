// Package signer runs the plugin against a kube-apiserver that signs and
// verifies service-account tokens through an external signer
// (--service-account-signing-endpoint, ExternalServiceAccountTokenSigner),
// the real gRPC protocol served by framework.Signer: bound tokens carry the
// signer's kid and verify against the cluster's JWKS, doctor tells the
// signer is in use from /metrics, and legacy Secret tokens (signed by
// kube-controller-manager's own key) verify only while the signer's
// FetchKeys also returns that key.
package signer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	signer  *framework.Signer
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bound-token-signer-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// kube-controller-manager's key, known before the cluster starts so
	// that the signer can serve its public half.
	kcmKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyFile := filepath.Join(dir, "kcm.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(kcmKey)}), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if signer, err = framework.StartSigner(dir, &kcmKey.PublicKey); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	framework.Main(m, framework.Options{Name: fmt.Sprintf("signer-%d", os.Getpid()), KeyFile: keyFile, SigningEndpoint: signer.Socket},
		func(c *framework.Cluster) { cluster = c })
}

func run(t *testing.T, stdin string, args ...string) framework.Result {
	t.Helper()
	return framework.Run(bytes.NewBufferString(stdin), cluster.Kubeconfig, args...)
}

// A bound token is the signer's (its kid), and verify checks it against
// the cluster's JWKS, which kube-apiserver now fills from the signer.
func TestBoundTokensAreTheSignersAndVerify(t *testing.T) {
	token := strings.TrimSpace(run(t, "", "create", "default", "-n", "default").MustCode(t, 0).Stdout)
	tok, err := jwt.Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header.KeyID != signer.KeyID {
		t.Fatalf("kid %q, want the signer's %q", tok.Header.KeyID, signer.KeyID)
	}
	run(t, token, "verify", "-").MustCode(t, 0)
	// The JWKS lists the signer's key, and not the legacy key, which
	// verifies but is excluded from discovery.
	b, err := cluster.Client.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := jwt.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range ks.Keys {
		kids = append(kids, k.ID)
	}
	if len(kids) != 1 || kids[0] != signer.KeyID {
		t.Fatalf("JWKS kids %v, want only the signer's %s", kids, signer.KeyID)
	}
}

// doctor tells the signer is in use from kube-apiserver's /metrics, and
// that legacy Secret tokens depend on the signer serving
// kube-controller-manager's key, which the JWKS cannot show (it is
// excluded from discovery).
func TestDoctorSeesTheExternalSigner(t *testing.T) {
	ns := cluster.CreateNamespace(t, "doctor-signer")
	legacyToken(t, ns, "app")
	r := run(t, "", "doctor")
	for _, want := range []string{
		"external signer: in use",
		"the JWKS lacks kid " + signer.LegacyKeyID(),
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("doctor does not say %q:\n%s", want, r.Stdout)
		}
	}
}

// Legacy Secret tokens are signed by kube-controller-manager, not by the
// signer; they verify while the signer's FetchKeys returns that key, and
// are refused once it stops (kube-apiserver refreshes the keys at the
// signer's hint, 2 s here; its token cache holds a success 10 s).
func TestLegacyTokensVerifyOnlyWhileTheSignerServesTheirKey(t *testing.T) {
	ns := cluster.CreateNamespace(t, "legacy-signer")
	token := legacyToken(t, ns, "app")
	run(t, token, "verify", "-", "--token-review").MustCode(t, 0)

	signer.ServeLegacyKey(false)
	t.Cleanup(func() { signer.ServeLegacyKey(true) })
	var last framework.Result
	cluster.Eventually(t, 45*time.Second, func() (bool, error) {
		last = run(t, token, "verify", "-", "--token-review")
		return last.Code == 1, fmt.Errorf("exit %d: %s", last.Code, last.Stdout+last.Stderr)
	})

	signer.ServeLegacyKey(true)
	cluster.Eventually(t, 45*time.Second, func() (bool, error) {
		last = run(t, token, "verify", "-", "--token-review")
		return last.Code == 0, fmt.Errorf("exit %d: %s", last.Code, last.Stdout+last.Stderr)
	})
}

// legacyToken makes a ServiceAccount and a legacy token Secret for it and
// waits for kube-controller-manager to fill the token.
func legacyToken(t *testing.T, ns, sa string) string {
	t.Helper()
	s := cluster.CreateLegacySecret(t, ns, sa, sa+"-token", false)
	return string(s.Data[corev1.ServiceAccountTokenKey])
}
