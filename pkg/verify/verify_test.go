package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/verify"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func kidOf(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	kid, err := jwt.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// jwksOf renders public keys as kube-apiserver serves /openid/v1/jwks.
func jwksOf(t *testing.T, pubs ...crypto.PublicKey) []byte {
	t.Helper()
	ks := &jwt.KeySet{}
	for _, p := range pubs {
		k, err := jwt.NewKey(p)
		if err != nil {
			t.Fatal(err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	b, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publicPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func kids(ks *jwt.KeySet) []string {
	var out []string
	for _, k := range ks.Keys {
		out = append(out, k.ID)
	}
	return out
}

// cluster is an apiserver that answers /openid/v1/jwks with handle, and
// counts the requests. The fake clientset's RESTClient is nil, so
// ClusterJWKS needs a real client talking to an httptest server.
func cluster(t *testing.T, handle http.HandlerFunc) (kubernetes.Interface, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path != "/openid/v1/jwks" {
			http.NotFound(w, r)
			return
		}
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs, &n
}

func serve(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b) }
}

// status answers like kube-apiserver refusing a request.
func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(&metav1.Status{Status: metav1.StatusFailure, Code: int32(code)})
	}
}

// issuerServer is an OIDC issuer on TLS at URL/issuer; the client trusts
// its certificate through the pool HTTPClient is given. URL/other serves a
// discovery document that names URL/issuer.
func issuerServer(t *testing.T, jwks []byte) (issuer string, hc *http.Client, srv *httptest.Server) {
	t.Helper()
	srv = httptest.NewUnstartedServer(nil)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake errors are expected in some tests
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		// /other vouches for /issuer's keys, which discovery must refuse.
		case "/issuer/.well-known/openid-configuration", "/other/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL + "/issuer", "jwks_uri": srv.URL + "/issuer/keys"})
		case "/issuer/keys":
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv.URL + "/issuer", verify.HTTPClient(pool, false), srv
}

func TestSourcesDescribe(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    verify.Sources
		want string
	}{
		{"nothing named: the cluster", verify.Sources{}, "the cluster's /openid/v1/jwks"},
		// A cluster client alone does not change the answer: it is the
		// default source, not a named one.
		{"cluster client only", verify.Sources{Cluster: fake.NewClientset()}, "the cluster's /openid/v1/jwks"},
		{"every kind, in order", verify.Sources{JWKSFiles: []string{"a.json", "b.json"}, PEMFiles: []string{"sa.pub"}, OIDCIssuer: "https://oidc.example"},
			"[JWKS a.json JWKS b.json key file sa.pub OIDC issuer https://oidc.example]"},
		{"issuer only", verify.Sources{OIDCIssuer: "https://oidc.example"}, "[OIDC issuer https://oidc.example]"},
	} {
		if got := tc.s.Describe(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Keys from every named source are merged, in the order JWKS files, key
// files, OIDC issuer; the cluster is not asked when any source is named,
// and asked when none is.
func TestSourcesLoad(t *testing.T) {
	a, b, c, d := newKey(t), newKey(t), newKey(t), newKey(t)
	dir := t.TempDir()
	jwksFile := writeFile(t, dir, "a.json", jwksOf(t, &a.PublicKey))
	pemFile := writeFile(t, dir, "b.pem", publicPEM(t, &b.PublicKey))
	issuer, hc, _ := issuerServer(t, jwksOf(t, &c.PublicKey))
	cs, asked := cluster(t, serve(jwksOf(t, &d.PublicKey)))

	ks, err := verify.Sources{JWKSFiles: []string{jwksFile}, PEMFiles: []string{pemFile}, OIDCIssuer: issuer, HTTPClient: hc, Cluster: cs}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{kidOf(t, &a.PublicKey), kidOf(t, &b.PublicKey), kidOf(t, &c.PublicKey)}; !reflect.DeepEqual(kids(ks), want) {
		t.Errorf("kids = %v, want %v", kids(ks), want)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the cluster was asked %d times although sources were named", n)
	}

	ks, err = verify.Sources{Cluster: cs}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{kidOf(t, &d.PublicKey)}; !reflect.DeepEqual(kids(ks), want) || asked.Load() != 1 {
		t.Errorf("cluster only: kids %v after %d requests, want %v after 1", kids(ks), asked.Load(), want)
	}

	// The same key named twice counts once.
	ks, err = verify.Sources{JWKSFiles: []string{jwksFile}, PEMFiles: []string{writeFile(t, dir, "a.pem", publicPEM(t, &a.PublicKey))}}.Load(context.Background())
	if err != nil || len(ks.Keys) != 1 {
		t.Errorf("one key in two files: %v, %v; want it once", ks, err)
	}
}

// Every failing source fails Load with a message naming it; so does a set
// of sources holding no key, which would otherwise make every token look
// forged.
func TestSourcesLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notJWKS := writeFile(t, dir, "not.json", []byte(`{"issuer":"x"}`))
	notPEM := writeFile(t, dir, "not.pem", []byte("hello"))
	empty := writeFile(t, dir, "empty.json", []byte(`{"keys":[]}`))
	issuer, hc, srv := issuerServer(t, jwksOf(t, &newKey(t).PublicKey))
	emptyCluster, _ := cluster(t, serve([]byte(`{"keys":[]}`)))

	for _, tc := range []struct {
		name string
		s    verify.Sources
		want string
	}{
		{"JWKS file missing", verify.Sources{JWKSFiles: []string{missing}}, "read JWKS file: open " + missing},
		{"JWKS file not a JWKS", verify.Sources{JWKSFiles: []string{notJWKS}}, "JWKS file " + notJWKS + ": not a JWKS document"},
		{"key file missing", verify.Sources{PEMFiles: []string{missing}}, "read key file: open " + missing},
		{"key file not PEM", verify.Sources{PEMFiles: []string{notPEM}}, "key file " + notPEM + ": no PEM block found"},
		{"issuer names another", verify.Sources{OIDCIssuer: srv.URL + "/other", HTTPClient: hc}, "issuer " + srv.URL + "/other: discovery document names issuer \"" + issuer + "\""},
		// No HTTPClient: the system's roots, which do not hold the test CA.
		{"issuer not trusted", verify.Sources{OIDCIssuer: issuer}, "GET " + issuer + "/.well-known/openid-configuration: "},
		{"no cluster client", verify.Sources{}, "no cluster client to ask"},
		{"JWKS file without keys", verify.Sources{JWKSFiles: []string{empty}}, "[JWKS " + empty + "] holds no usable verification keys"},
		{"cluster without keys", verify.Sources{Cluster: emptyCluster}, "the cluster's /openid/v1/jwks holds no usable verification keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := tc.s.Load(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || ks != nil {
				t.Errorf("got %v, %v; want an error starting %q", ks, err, tc.want)
			}
		})
	}
}

// ClusterJWKS tells a refusal (RBAC: the issuer-discovery ClusterRole) and
// an apiserver without the endpoint apart from other failures, and retries
// a transient one.
func TestClusterJWKS(t *testing.T) {
	key := newKey(t)
	good := jwksOf(t, &key.PublicKey)
	if _, err := verify.ClusterJWKS(context.Background(), nil); err == nil || err.Error() != "no cluster client to ask" {
		t.Errorf("nil client: %v", err)
	}
	for _, tc := range []struct {
		name     string
		handle   http.HandlerFunc
		wantErr  error  // matched with errors.Is
		wantText string // prefix, when wantErr is nil
		requests int32
	}{
		{"served", serve(good), nil, "", 1},
		{"forbidden", status(http.StatusForbidden), verify.ErrJWKSForbidden, "", 1},
		{"unauthorized", status(http.StatusUnauthorized), verify.ErrJWKSForbidden, "", 1},
		{"not found", status(http.StatusNotFound), verify.ErrJWKSNotServed, "", 1},
		{"bad request", status(http.StatusBadRequest), nil, "fetch the cluster's /openid/v1/jwks: ", 1},
		{"not a JWKS", serve([]byte(`<html>`)), nil, "the cluster's /openid/v1/jwks: not a JWKS document", 1},
		{"private key material", serve([]byte(`{"keys":[{"kty":"EC","d":"AAAA"}]}`)), nil, "the cluster's /openid/v1/jwks: JWKS key 0 holds private key material", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, n := cluster(t, tc.handle)
			ks, err := verify.ClusterJWKS(context.Background(), cs)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
			case tc.wantText != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantText) {
					t.Errorf("error %v, want one starting %q", err, tc.wantText)
				}
			default:
				if err != nil || !reflect.DeepEqual(kids(ks), []string{kidOf(t, &key.PublicKey)}) {
					t.Errorf("%v, %v; want the served key", ks, err)
				}
			}
			if n.Load() != tc.requests {
				t.Errorf("%d requests, want %d", n.Load(), tc.requests)
			}
		})
	}

	// A 503 without Retry-After (which client-go does not retry) is
	// retried: the second answer counts.
	var tries atomic.Int32
	cs, _ := cluster(t, func(w http.ResponseWriter, r *http.Request) {
		if tries.Add(1) == 1 {
			status(http.StatusServiceUnavailable)(w, r)
			return
		}
		serve(good)(w, r)
	})
	if ks, err := verify.ClusterJWKS(context.Background(), cs); err != nil || len(ks.Keys) != 1 || tries.Load() != 2 {
		t.Errorf("after one 503: %v, %v in %d tries; want the key in 2", ks, err, tries.Load())
	}
}

func TestLoadCAPool(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	good := writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	notPEM := writeFile(t, dir, "ca.txt", []byte("not a certificate\n"))
	// A PEM file with a key but no certificate holds no CA either.
	keyOnly := writeFile(t, dir, "key.pem", publicPEM(t, &newKey(t).PublicKey))

	pool, err := verify.LoadCAPool(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Certificate().Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("the bundle's CA is not trusted: %v", err)
	}

	if _, err := verify.LoadCAPool(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read CA bundle: ") {
		t.Errorf("missing file: %v", err)
	}
	for _, f := range []string{notPEM, keyOnly} {
		if p, err := verify.LoadCAPool(f); err == nil || err.Error() != f+" holds no PEM certificate" || p != nil {
			t.Errorf("%s: %v, %v; want no pool and 'holds no PEM certificate'", f, p, err)
		}
	}
}

// HTTPClient trusts the roots it is given, skips the check only when asked,
// and never lets a server talk it below TLS 1.2.
func TestHTTPClient(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	// A server that speaks TLS 1.1 at most.
	old := httptest.NewUnstartedServer(http.NotFoundHandler())
	old.Config.ErrorLog = log.New(io.Discard, "", 0)
	old.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} //nolint:gosec // the point of the test
	old.StartTLS()
	defer old.Close()
	trusted := x509.NewCertPool()
	trusted.AddCert(srv.Certificate())

	get := func(hc *http.Client, url string) error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for _, tc := range []struct {
		name     string
		roots    *x509.CertPool
		insecure bool
		url      string
		wantErr  string
	}{
		{"roots given, server under them", trusted, false, srv.URL, ""},
		{"system roots", nil, false, srv.URL, "certificate"},
		{"insecure, no roots", nil, true, srv.URL, ""},
		{"TLS 1.1 server, insecure", nil, true, old.URL, "protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := verify.HTTPClient(tc.roots, tc.insecure)
			err := get(hc, tc.url)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("GET: %v, want error %q", err, tc.wantErr)
			}
			// Go's client already refuses TLS 1.1 by default; the explicit
			// floor keeps that when the default moves.
			if tlsc := hc.Transport.(*http.Transport).TLSClientConfig; tlsc.MinVersion < tls.VersionTLS12 || tlsc.RootCAs != tc.roots {
				t.Errorf("TLS config: MinVersion %x, RootCAs %p; want >= TLS 1.2 and the given roots %p", tlsc.MinVersion, tlsc.RootCAs, tc.roots)
			}
			if hc.Timeout != 30*time.Second {
				t.Errorf("timeout %v, want 30s: a hung issuer must not hang verify", hc.Timeout)
			}
		})
	}
	// The client's settings are its own: http.DefaultTransport is unchanged.
	verify.HTTPClient(trusted, true)
	if tc := http.DefaultTransport.(*http.Transport).TLSClientConfig; tc != nil && (tc.InsecureSkipVerify || tc.RootCAs != nil) {
		t.Errorf("http.DefaultTransport changed: %+v", tc)
	}
}

// tokenReviews is a fake clientset whose TokenReview API answers with
// answer, or fails with the errors in fail first; it records the requests.
func tokenReviews(answer authenticationv1.TokenReviewStatus, fail ...error) (*fake.Clientset, *[]authenticationv1.TokenReviewSpec) {
	cs := fake.NewClientset()
	var specs []authenticationv1.TokenReviewSpec
	cs.PrependReactor("create", "tokenreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		tr := a.(clienttesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		specs = append(specs, tr.Spec)
		if len(fail) > 0 {
			err := fail[0]
			fail = fail[1:]
			return true, nil, err
		}
		out := tr.DeepCopy()
		out.Status = answer
		return true, out, nil
	})
	return cs, &specs
}

func TestTokenReview(t *testing.T) {
	gr := schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}
	accepted := authenticationv1.TokenReviewStatus{
		Authenticated: true, Audiences: []string{"vault"},
		User: authenticationv1.UserInfo{Username: "system:serviceaccount:ns:api", UID: "sa-uid", Groups: []string{"system:serviceaccounts"},
			Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"api-0"}}},
	}
	for _, tc := range []struct {
		name    string
		answer  authenticationv1.TokenReviewStatus
		fail    []error
		want    *verify.Review
		wantErr string
		tries   int
	}{
		{"accepted", accepted, nil, &verify.Review{
			Authenticated: true, Username: "system:serviceaccount:ns:api", UID: "sa-uid", Groups: []string{"system:serviceaccounts"},
			Audiences: []string{"vault"}, Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"api-0"}},
		}, "", 1},
		{"refused with the cluster's reason", authenticationv1.TokenReviewStatus{Error: "token has been invalidated"}, nil,
			&verify.Review{Error: "token has been invalidated"}, "", 1},
		// The cluster may refuse without a reason; the review still says
		// why it is not verified.
		{"refused without reason", authenticationv1.TokenReviewStatus{}, nil,
			&verify.Review{Error: "the cluster does not accept this token"}, "", 1},
		{"not allowed to review", accepted, []error{apierrors.NewForbidden(gr, "", errors.New("no"))}, nil,
			`not allowed to create tokenreviews (RBAC verb "create" on "tokenreviews.authentication.k8s.io", e.g. ClusterRole system:auth-delegator)`, 1},
		{"other failure", accepted, []error{apierrors.NewBadRequest("bad")}, nil, "TokenReview: bad", 1},
		// TokenReview stores nothing, so a transient failure is retried.
		{"transient failure retried", accepted, []error{apierrors.NewServiceUnavailable("busy")}, &verify.Review{
			Authenticated: true, Username: "system:serviceaccount:ns:api", UID: "sa-uid", Groups: []string{"system:serviceaccounts"},
			Audiences: []string{"vault"}, Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"api-0"}},
		}, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, specs := tokenReviews(tc.answer, tc.fail...)
			got, err := verify.TokenReview(context.Background(), cs, "the-token", []string{"vault", "api"})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || got != nil {
					t.Errorf("%+v, %v; want error %q", got, err, tc.wantErr)
				}
			} else if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%+v, %v; want %+v", got, err, tc.want)
			}
			if len(*specs) != tc.tries {
				t.Fatalf("%d reviews sent, want %d", len(*specs), tc.tries)
			}
			if s := (*specs)[0]; s.Token != "the-token" || !reflect.DeepEqual(s.Audiences, []string{"vault", "api"}) {
				t.Errorf("review sent %+v, want the token and both audiences", s)
			}
		})
	}
}
