package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/internal/testsigner"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// mintToken returns a real token from the cluster and its decoded form.
func mintToken(t *testing.T, ns, sa string, extra ...string) (string, *jwt.Token) {
	t.Helper()
	r := run(t, "", append([]string{"create", sa, "-n", ns}, extra...)...).MustCode(t, 0)
	tok, err := jwt.Decode(r.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	return r.Stdout, tok
}

func TestVerifyAgainstClusterJWKS(t *testing.T) {
	ns := cluster.CreateNamespace(t, "verify")
	cluster.CreateServiceAccount(t, ns, "api")
	token, _ := mintToken(t, ns, "api", "--audience", "vault")

	r := run(t, token, "verify", "-").MustCode(t, 0)
	r.StdoutHas(t, "VERIFIED: RS256 signature", "system:serviceaccount:"+ns+":api")

	run(t, token, "verify", "-", "--audience", "vault", "--issuer", cluster.Issuer).MustCode(t, 0)

	r = run(t, token, "verify", "-", "-o", "json").MustCode(t, 0)
	var v struct {
		Header   map[string]any `json:"header"`
		Payload  map[string]any `json:"payload"`
		Legacy   bool           `json:"legacy"`
		Verified bool           `json:"verified"`
		Errors   []string       `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Verified || v.Errors == nil || len(v.Errors) != 0 || v.Legacy || v.Payload["sub"] != "system:serviceaccount:"+ns+":api" {
		t.Fatalf("-o json: %s", r.Stdout)
	}

	// Two failed checks are both reported.
	r = run(t, token, "verify", "-", "--audience", "other", "--issuer", "https://elsewhere.example").MustCode(t, 1)
	r.StdoutHas(t, "REJECTED (2 problems)", "https://elsewhere.example", "other")
	if strings.Contains(r.Stdout+r.Stderr, token) {
		t.Fatal("the token appears in the output of a rejection")
	}

	// The same keys, saved as a file, verify offline.
	jwks, err := cluster.Client.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, token, "verify", "-", "--jwks", file, "--kubeconfig", "/nonexistent").MustCode(t, 0)
	run(t, token, "verify", "-", "--public-key", cluster.PublicKeyFile).MustCode(t, 0)

	// Unreadable keys: could not verify, exit 2.
	run(t, token, "verify", "-", "--jwks", filepath.Join(t.TempDir(), "missing.json")).MustCode(t, 2)
}

func TestVerifyOIDCIssuer(t *testing.T) {
	// Discovery is readable by ServiceAccounts only, by default; a relying
	// party reads it anonymously, so grant that as its docs say.
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-oidc-discovery-anonymous"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:unauthenticated"}},
	}
	if _, err := cluster.Client.RbacV1().ClusterRoleBindings().Create(context.Background(), crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	ns := cluster.CreateNamespace(t, "oidc")
	cluster.CreateServiceAccount(t, ns, "api")
	token, _ := mintToken(t, ns, "api")

	var r framework.Result
	cluster.Eventually(t, 15*time.Second, func() (bool, error) {
		r = run(t, token, "verify", "-", "--oidc-issuer", cluster.Issuer, "--certificate-authority", cluster.CAFile)
		return r.Code == 0, fmt.Errorf("exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	})
	r.MustCode(t, 0).StdoutHas(t, "OIDC issuer "+cluster.Issuer)

	// Without the CA the TLS check fails: could not verify.
	run(t, token, "verify", "-", "--oidc-issuer", cluster.Issuer).MustCode(t, 2)
	// Plain http is refused outright.
	run(t, token, "verify", "-", "--oidc-issuer", strings.Replace(cluster.Issuer, "https://", "http://", 1)).MustCode(t, 2)
}

func TestVerifyBatch(t *testing.T) {
	ns := cluster.CreateNamespace(t, "batch")
	cluster.CreateServiceAccount(t, ns, "api")
	var lines []string
	for i := 0; i < 3; i++ {
		tok, _ := mintToken(t, ns, "api")
		lines = append(lines, tok)
	}
	good := strings.Join(lines, "\n") + "\n"
	r := run(t, good, "verify", "--batch").MustCode(t, 0)
	if n := strings.Count(r.Stdout, "\tVERIFIED\t"); n != 3 {
		t.Fatalf("want 3 VERIFIED lines:\n%s", r.Stdout)
	}
	bad := good + "not.a.token\n\n" + tamper(lines[0]) + "\n"
	r = run(t, bad, "verify", "--batch", "-o", "json").MustCode(t, 1)
	out := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(out) != 5 {
		t.Fatalf("want 5 JSON lines:\n%s", r.Stdout)
	}
	var last struct {
		Verified bool
		Line     int
		Errors   []string
	}
	if err := json.Unmarshal([]byte(out[4]), &last); err != nil || last.Verified || last.Line != 6 || len(last.Errors) == 0 {
		t.Fatalf("last line %s (%v)", out[4], err)
	}
	r.StderrHas(t, "3 of 5 tokens verified")
}

func TestDecodeAndVerifyLegacySecretToken(t *testing.T) {
	ns := cluster.CreateNamespace(t, "legacy")
	sa := cluster.CreateServiceAccount(t, ns, "old")
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "old-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa.Name}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}
	if _, err := cluster.Client.CoreV1().Secrets(ns).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		s, err := cluster.Client.CoreV1().Secrets(ns).Get(context.Background(), "old-token", metav1.GetOptions{})
		return err == nil && len(s.Data["token"]) > 0, err
	})
	r := run(t, "", "decode", "--from-secret", "old-token", "-n", ns).MustCode(t, 0)
	r.StdoutHas(t, "legacy Secret-based token: NEVER EXPIRES", "old-token", string(sa.UID))

	r = run(t, "", "decode", "--from-secret", "old-token", "-n", ns, "-o", "json").MustCode(t, 0)
	var v struct{ Legacy, Verified bool }
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || !v.Legacy || v.Verified {
		t.Fatalf("-o json legacy=%v verified=%v (%v)", v.Legacy, v.Verified, err)
	}
	r = run(t, "", "verify", "--from-secret", "old-token", "-n", ns).MustCode(t, 0)
	r.StdoutHas(t, "WARNING: legacy")
	run(t, "", "verify", "--from-secret", "old-token", "-n", ns, "--token-review").MustCode(t, 0)

	run(t, "", "decode", "--from-secret", "missing", "-n", ns).MustCode(t, 2).StderrHas(t, `secret "missing" not found`)
}

// Hostile tokens are built from a real token's claims and, where the attack
// needs it, signed with the cluster's own key, so that exactly one rule is
// what stands between them and acceptance.
func TestVerifyRejectsHostileTokens(t *testing.T) {
	ns := cluster.CreateNamespace(t, "hostile")
	cluster.CreateServiceAccount(t, ns, "api")
	token, tok := mintToken(t, ns, "api")
	clusterKey := readRSAKey(t, cluster.SigningKeyFile)
	kid := tok.Header.KeyID
	if kid == "" {
		t.Fatal("cluster token has no kid")
	}
	// Control: our re-signing reproduces a token that verifies.
	control := signRS256(t, clusterKey, map[string]any{"alg": "RS256", "kid": kid}, tok.PayloadMap())
	run(t, control, "verify", "-").MustCode(t, 0)

	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubPEM, _ := os.ReadFile(cluster.PublicKeyFile)
	now := time.Now()
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{}
		for k, v := range tok.PayloadMap() {
			c[k] = v
		}
		mut(c)
		return c
	}
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "RS256", "kid": kid}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	cases := map[string]struct {
		token string
		want  string
	}{
		"tampered payload":                    {tamper(token), "signature"},
		"alg none":                            {unsigned(map[string]any{"alg": "none", "kid": kid}, tok.PayloadMap()), "none"},
		"HS256 keyed with the RSA public key": {signHS256(pubPEM, map[string]any{"alg": "HS256", "kid": kid}, tok.PayloadMap()), "HS256"},
		"expired": {signRS256(t, clusterKey, hdr(nil), claims(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		})), "expired"},
		"not yet valid": {signRS256(t, clusterKey, hdr(nil), claims(func(c map[string]any) {
			c["nbf"], c["exp"] = now.Add(time.Hour).Unix(), now.Add(2*time.Hour).Unix()
		})), "not valid before"},
		"unknown kid":            {signRS256(t, otherKey, map[string]any{"alg": "RS256", "kid": "attacker-key"}, tok.PayloadMap()), "attacker-key"},
		"spoofed kid":            {signRS256(t, otherKey, hdr(nil), tok.PayloadMap()), "signature"},
		"empty kid, foreign key": {signRS256(t, otherKey, map[string]any{"alg": "RS256"}, tok.PayloadMap()), "signature"},
		"jku header":             {signRS256(t, clusterKey, hdr(map[string]any{"jku": "https://attacker.example/jwks"}), tok.PayloadMap()), "jku"},
		"x5u header":             {signRS256(t, clusterKey, hdr(map[string]any{"x5u": "https://attacker.example/cert"}), tok.PayloadMap()), "x5u"},
		"embedded jwk":           {signRS256(t, clusterKey, hdr(map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": b64(ecKey.X.Bytes()), "y": b64(ecKey.Y.Bytes())}}), tok.PayloadMap()), "jwk"},
		"unknown crit":           {signRS256(t, clusterKey, hdr(map[string]any{"crit": []string{"exp2"}, "exp2": 1}), tok.PayloadMap()), "crit"},
		"wrong issuer":           {signRS256(t, clusterKey, hdr(nil), claims(func(c map[string]any) { c["iss"] = "https://attacker.example" })), "issuer"},
		"wrong audience":         {signRS256(t, clusterKey, hdr(nil), claims(func(c map[string]any) { c["aud"] = []string{"someone-else"} })), "audience"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := run(t, tc.token, "verify", "-", "--issuer", cluster.Issuer, "--audience", tok.Claims.Audience[0])
			r.MustCode(t, 1)
			if !strings.Contains(strings.ToLower(r.Stdout), strings.ToLower(tc.want)) {
				t.Errorf("rejection does not mention %q:\n%s", tc.want, r.Stdout)
			}
			// The cluster agrees wherever it would see the token.
			if name == "tampered payload" || name == "spoofed kid" || name == "alg none" {
				run(t, tc.token, "verify", "-", "--token-review").MustCode(t, 1)
			}
		})
	}
}

func TestMalformedInputNeverPanics(t *testing.T) {
	huge := strings.Repeat("a", 1<<20+10)
	for _, in := range []string{"", "abc", "a.b", "a.b.c.d", "!!!.###.$$$", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "W10.W10.c2ln", huge} {
		r := run(t, in, "decode", "-")
		if r.Code != 2 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.HasPrefix(r.Stderr, "error: ") {
			t.Errorf("decode %.20q: code %d stderr %.200q", in, r.Code, r.Stderr)
		}
		if r := run(t, in, "verify", "-", "--public-key", cluster.PublicKeyFile); r.Code == 0 {
			t.Errorf("verify %.20q: accepted", in)
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segments(t testing.TB, header, payload map[string]any) string {
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(p)
}

func signRS256(_ testing.TB, key *rsa.PrivateKey, header, payload map[string]any) string {
	return testsigner.Sign(key, header, payload)
}

func signHS256(secret []byte, header, payload map[string]any) string {
	return testsigner.SignHS256(secret, header, payload)
}

func unsigned(header, payload map[string]any) string {
	return segments(nil, header, payload) + "."
}

// tamper flips the payload to claim another ServiceAccount, keeping the
// original signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), `"sub":"system:serviceaccount:`, `"sub":"system:serviceaccount:x`, 1))
	return parts[0] + "." + b64(p) + "." + parts[2]
}

func readRSAKey(t *testing.T, path string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}
