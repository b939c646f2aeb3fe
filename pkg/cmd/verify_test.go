package cmd

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// An issuer behind a private CA is trusted through --oidc-ca-file only, for
// both the discovery document and the JWKS; a bad bundle stops verify before
// any request.
func TestVerifyOIDCCAFile(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	k, err := jwt.NewKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := (&jwt.KeySet{Keys: []jwt.Key{k}}).MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	var requests, jwksRequests atomic.Int32
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/cluster-a/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL + "/cluster-a", "jwks_uri": srv.URL + "/cluster-a/openid/v1/jwks"})
		case "/cluster-a/openid/v1/jwks":
			jwksRequests.Add(1)
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	})
	srv.StartTLS()
	defer srv.Close()
	issuer := srv.URL + "/cluster-a"

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.txt")
	_ = os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	now := time.Now()
	tok := testToken(t, key, map[string]any{"iss": issuer, "sub": "system:serviceaccount:ns:api", "aud": []string{"vault"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	t.Setenv("SSL_CERT_FILE", notPEM) // the system pool cannot trust the test CA by accident
	t.Setenv("SSL_CERT_DIR", t.TempDir())

	out, errOut, code := runCmd(t, tok, "verify", "-", "--oidc-issuer", issuer, "--oidc-ca-file", ca)
	if code != 0 || !strings.Contains(out, "VERIFIED") || jwksRequests.Load() != 1 {
		t.Fatalf("with --oidc-ca-file: exit %d, %d JWKS requests\n%s%s", code, jwksRequests.Load(), out, errOut)
	}
	_, errOut, code = runCmd(t, tok, "verify", "-", "--oidc-issuer", issuer)
	if code != ExitUsage || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without --oidc-ca-file the issuer must not be trusted: exit %d\n%s", code, errOut)
	}

	before := requests.Load()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing", []string{"--oidc-issuer", issuer, "--oidc-ca-file", filepath.Join(dir, "none.pem")}, "error: --oidc-ca-file: read CA bundle: open "},
		{"not PEM", []string{"--oidc-issuer", issuer, "--oidc-ca-file", notPEM}, "error: --oidc-ca-file: " + notPEM + " holds no PEM certificate"},
		{"unreadable", []string{"--oidc-issuer", issuer, "--oidc-ca-file", dir}, "error: --oidc-ca-file: read CA bundle: "},
		{"no issuer", []string{"--jwks", ca, "--oidc-ca-file", ca}, "error: --oidc-ca-file is the CA bundle for --oidc-issuer"},
	} {
		_, errOut, code := runCmd(t, tok, append([]string{"verify", "-"}, tc.args...)...)
		if code != ExitUsage || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, want %d and one line starting %q:\n%s", tc.name, code, ExitUsage, tc.want, errOut)
		}
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("a bad --oidc-ca-file still sent %d requests to the issuer", n)
	}
}
