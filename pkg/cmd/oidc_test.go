package cmd

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// oidc export says which URL each file it wrote must answer at: the folder
// is the issuer's root, which for an issuer with a path is not the host's.
func TestOIDCExportSaysWhereToUpload(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	k, err := jwt.NewKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := (&jwt.KeySet{Keys: []jwt.Key{k}}).MarshalJWKS()
	apiserver := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": "https://kubernetes.default.svc", "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
				"id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/openid/v1/jwks":
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	defer apiserver.Close()
	kc := kubeconfigFor(t, apiserver.URL, true)

	for _, tc := range []struct {
		issuer, layout string
		want           []string
	}{
		{"https://oidc.example.com/cluster-a", "kube", []string{
			"serve DIR at https://oidc.example.com/cluster-a/, not at the host's root (there discovery answers 404): upload its contents under cluster-a/\n",
			"  DIR/.well-known/openid-configuration -> https://oidc.example.com/cluster-a/.well-known/openid-configuration\n",
			"  DIR/openid/v1/jwks                   -> https://oidc.example.com/cluster-a/openid/v1/jwks\n",
		}},
		{"https://oidc.example.com/teams/b/", "keys.json", []string{
			"upload its contents under teams/b/\n",
			"  DIR/.well-known/openid-configuration -> https://oidc.example.com/teams/b/.well-known/openid-configuration\n",
			"  DIR/keys.json                        -> https://oidc.example.com/teams/b/keys.json\n",
		}},
		{"https://oidc.example.com", "kube", []string{
			"serve DIR at the root of https://oidc.example.com/:\n",
			"  DIR/.well-known/openid-configuration -> https://oidc.example.com/.well-known/openid-configuration\n",
		}},
	} {
		dir := filepath.Join(t.TempDir(), "site")
		out, errOut, code := run(t, cmdRun{}, "", "--kubeconfig", kc, "oidc", "export", "--out-dir", dir, "--issuer", tc.issuer, "--layout", tc.layout)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", tc.issuer, code, out, errOut)
		}
		errOut = strings.ReplaceAll(errOut, dir, "DIR")
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.issuer, w, errOut)
			}
		}
		// The files are where the hint says.
		b, err := os.ReadFile(filepath.Join(dir, ".well-known", "openid-configuration"))
		var d jwt.Discovery
		if err != nil || json.Unmarshal(b, &d) != nil || d.Issuer != tc.issuer {
			t.Errorf("%s: discovery document %s %v", tc.issuer, b, err)
		}
		if strings.Contains(out, "->") {
			t.Errorf("%s: the upload hint belongs on stderr:\n%s", tc.issuer, out)
		}
	}
}
