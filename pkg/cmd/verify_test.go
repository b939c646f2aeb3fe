package cmd

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
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

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

	out, errOut, code := run(t, cmdRun{}, tok, "verify", "-", "--oidc-issuer", issuer, "--oidc-ca-file", ca)
	if code != 0 || !strings.Contains(out, "VERIFIED") || jwksRequests.Load() != 1 {
		t.Fatalf("with --oidc-ca-file: exit %d, %d JWKS requests\n%s%s", code, jwksRequests.Load(), out, errOut)
	}
	_, errOut, code = run(t, cmdRun{}, tok, "verify", "-", "--oidc-issuer", issuer)
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
		_, errOut, code := run(t, cmdRun{}, tok, append([]string{"verify", "-"}, tc.args...)...)
		if code != ExitUsage || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, want %d and one line starting %q:\n%s", tc.name, code, ExitUsage, tc.want, errOut)
		}
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("a bad --oidc-ca-file still sent %d requests to the issuer", n)
	}
}

// verifyAPI answers TokenReviews (authenticated when the token is good) and
// /openid/v1/jwks with jwksStatus.
type verifyAPI struct {
	good       string
	jwksStatus int
}

func (a verifyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		tr := &authenticationv1.TokenReview{}
		_ = json.NewDecoder(r.Body).Decode(tr)
		if tr.Spec.Token == a.good {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: tr.Spec.Audiences,
				User: authenticationv1.UserInfo{Username: "system:serviceaccount:ns:api"}}
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(tr)
	case "/openid/v1/jwks":
		w.WriteHeader(a.jwksStatus)
		_ = json.NewEncoder(w).Encode(&metav1.Status{Status: metav1.StatusFailure, Code: int32(a.jwksStatus)})
	default:
		http.NotFound(w, r)
	}
}

func TestVerifyCommand(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	kid, _ := jwt.KeyID(&key.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(t.TempDir(), "sa.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := testToken(t, key, map[string]any{"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:api", "aud": []string{"vault"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	expired := testToken(t, key, map[string]any{"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:old", "aud": []string{"vault"},
		"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})
	keys := "[key file " + pub + "]"
	for _, tc := range []struct {
		name     string
		stdin    string
		args     []string
		api      verifyAPI
		wantCode int
		wantOut  string // the start of stdout
		wantErr  string // exact stderr
	}{
		{name: "verified", stdin: good, args: []string{"-", "--public-key", pub, "--issuer", "https://issuer.example", "--audience", "vault"},
			wantOut: "VERIFIED: RS256 signature by key \"" + kid + "\" from " + keys + ", issuer checked, audience checked\n\nKind:"},
		{name: "rejected", stdin: expired, args: []string{"-", "--public-key", pub}, wantCode: ExitFailed,
			wantOut: "REJECTED (1 problem):\n  - token expired 1h ago (at "},
		{name: "jsonpath", stdin: good, args: []string{"-", "--public-key", pub, "-o", "jsonpath={.kind} {.verified} {.header.kid}"},
			wantOut: "TokenVerdict true " + kid},
		{name: "go-template", stdin: expired, args: []string{"-", "--public-key", pub, "-o", "go-template={{.payload.sub}} {{len .errors}}"},
			wantCode: ExitFailed, wantOut: "system:serviceaccount:ns:old 1"},
		{name: "yaml", stdin: good, args: []string{"-", "--public-key", pub, "-o", "yaml"},
			wantOut: "algorithm: RS256\napiVersion: bound-token.kubectl.io/v1alpha1\nerrors: []\nheader:\n"},
		{name: "a bad -o fails before keys are read", stdin: good, args: []string{"-", "--public-key", pub + ".missing", "-o", "wide"}, wantCode: ExitUsage,
			wantErr: `error: --output "wide" is not supported; use one of: ` + resultFormats + "\n"},
		{name: "missing key file", stdin: good, args: []string{"-", "--public-key", pub + ".missing"}, wantCode: ExitUsage,
			wantErr: "error: read key file: open " + pub + ".missing: no such file or directory\n"},
		{name: "batch table", stdin: "# comment\n" + good + "\n\n" + expired + "\n", args: []string{"--batch", "--public-key", pub}, wantCode: ExitFailed,
			wantOut: "2\tVERIFIED\tsystem:serviceaccount:ns:api\texpires in 59m", wantErr: "1 of 2 tokens verified\n"},
		{name: "batch jsonpath per token", stdin: good + "\n" + expired + "\n", args: []string{"--batch", "--public-key", pub, "-o", "jsonpath={.line}:{.verified} "}, wantCode: ExitFailed,
			wantOut: "1:true 2:false ", wantErr: "1 of 2 tokens verified\n"},
		{name: "batch yaml is a stream", stdin: good + "\n" + good + "\n", args: []string{"--batch", "--public-key", pub, "-o", "yaml"},
			wantOut: "algorithm: RS256\n"},
		{name: "batch without tokens", stdin: "\n# none\n", args: []string{"--batch", "--public-key", pub}, wantCode: ExitUsage,
			wantErr: "error: --batch read no tokens from stdin\n"},
		{name: "batch and a token file", args: []string{"--batch", "--token-file", "t", "--public-key", pub}, wantCode: ExitUsage,
			wantErr: "error: --batch reads tokens from stdin; drop TOKEN, --token-file and --from-secret\n"},
		{name: "TokenReview", stdin: good, args: []string{"-", "--token-review", "--audience", "vault"}, api: verifyAPI{good: good},
			wantOut: "VERIFIED by the cluster's TokenReview API: authenticated as system:serviceaccount:ns:api\n  audiences accepted: vault\n"},
		{name: "TokenReview rejects", stdin: expired, args: []string{"-", "--token-review", "-o", "jsonpath={.errors[0]}"}, api: verifyAPI{good: good},
			wantCode: ExitFailed, wantOut: "TokenReview: the cluster does not accept this token"},
		{name: "TokenReview with keys", stdin: good, args: []string{"-", "--token-review", "--jwks", pub}, wantCode: ExitUsage,
			wantErr: "error: --token-review asks the cluster; it cannot be combined with --jwks, --public-key or --oidc-issuer\n"},
		{name: "the cluster refuses its JWKS", stdin: good, args: []string{"-"}, api: verifyAPI{jwksStatus: http.StatusForbidden}, wantCode: ExitUsage,
			wantErr: "error: the cluster refused /openid/v1/jwks (by default only group system:serviceaccounts may read it; bind ClusterRole system:service-account-issuer-discovery); or pass --jwks, --public-key, --oidc-issuer or --token-review\n"},
		{name: "the cluster has no JWKS", stdin: good, args: []string{"-"}, api: verifyAPI{jwksStatus: http.StatusNotFound}, wantCode: ExitUsage,
			wantErr: "error: the cluster serves no /openid/v1/jwks (kube-apiserver older than 1.20 or its --service-account-jwks-uri disabled); pass --jwks or --public-key\n"},
		{name: "leeway out of range", stdin: good, args: []string{"-", "--public-key", pub, "--leeway", "1h"}, wantCode: ExitUsage,
			wantErr: "error: --leeway 1h0m0s is out of range; use 0 to 10m\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newAPITestFactory(t, "ns", nil, tc.api)
			out, errOut, code := run(t, cmdRun{cmd: NewCmdVerify, f: tf}, tc.stdin, append([]string{"verify"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			if !strings.HasPrefix(out, tc.wantOut) {
				t.Errorf("stdout does not start with %q:\n%s", tc.wantOut, out)
			}
			if diff := cmp.Diff(tc.wantErr, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// verify --batch -o json stays one compact JSON document per token line.
func TestVerifyBatchJSONLines(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(t.TempDir(), "sa.pub")
	_ = os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	good := testToken(t, key, map[string]any{"sub": "system:serviceaccount:ns:api", "exp": time.Now().Add(time.Hour).Unix()})
	tf := newAPITestFactory(t, "ns", nil, nil)
	out, errOut, code := run(t, cmdRun{cmd: NewCmdVerify, f: tf}, good+"\nnot.a.token\n", "verify", "--batch", "--public-key", pub, "-o", "json")
	if code != ExitFailed || errOut != "1 of 2 tokens verified\n" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	type verdict struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Verified   bool   `json:"verified"`
		Line       int    `json:"line"`
	}
	var got []verdict
	for _, l := range lines(out) {
		var v verdict
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		got = append(got, v)
	}
	want := []verdict{{"bound-token.kubectl.io/v1alpha1", "TokenVerdict", true, 1}, {"bound-token.kubectl.io/v1alpha1", "TokenVerdict", false, 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON lines (-want +got):\n%s", diff)
	}

	// A batch that stops after checking some tokens exits 1, not 2: the
	// tokens above were checked and printed.
	long := strings.Repeat("a", 1<<20+1) + "\n"
	for _, tc := range []struct {
		stdin    string
		wantCode int
		wantErr  string
	}{
		{long, ExitUsage, "error: line 1 of stdin is longer than 1 MiB: not a token\n"},
		{good + "\n" + long, ExitFailed, "error: line 2 of stdin is longer than 1 MiB: not a token\n"},
	} {
		out, errOut, code := run(t, cmdRun{cmd: NewCmdVerify, f: tf}, tc.stdin, "verify", "--batch", "--public-key", pub, "-o", "json")
		if code != tc.wantCode || errOut != tc.wantErr {
			t.Errorf("exit %d, want %d; stderr %q, want %q", code, tc.wantCode, errOut, tc.wantErr)
		}
		if want := strings.Count(tc.stdin, "\n") - 1; len(lines(out)) != want {
			t.Errorf("%d verdicts printed, want %d: %s", len(lines(out)), want, out)
		}
	}
}
