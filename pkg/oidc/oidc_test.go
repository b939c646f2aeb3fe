package oidc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/oidc"
)

const clusterIssuer = "https://kubernetes.default.svc"

// keySet is two EC keys with kube-apiserver's kids, and the JWKS as the
// cluster would serve it.
func keySet(t *testing.T) (*jwt.KeySet, []byte) {
	t.Helper()
	ks := &jwt.KeySet{}
	for range 2 {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := jwt.NewKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	raw, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	return ks, raw
}

// apiserver serves the two documents, or answers a path with the status in
// fail. The fake clientset's RESTClient is nil, so a real client talks to an
// httptest server.
func apiserver(t *testing.T, discovery, jwks []byte, fail map[string]int) kubernetes.Interface {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := fail[r.URL.Path]; code != 0 {
			http.Error(w, "no", code)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = w.Write(discovery)
		case "/openid/v1/jwks":
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func discoveryDoc(t *testing.T) []byte {
	b, err := json.Marshal(map[string]any{
		"issuer": clusterIssuer, "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
		"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Fetch returns the cluster's discovery document, its keys and the JWKS
// bytes exactly as served (Write publishes those bytes).
func TestFetch(t *testing.T) {
	ks, raw := keySet(t)
	// Spacing a re-encoding would drop: the bytes must come back as sent.
	raw = append([]byte("  "), raw...)
	cs := apiserver(t, discoveryDoc(t), raw, nil)
	d, got, gotRaw, err := oidc.Fetch(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if d.Issuer != clusterIssuer || !reflect.DeepEqual(d.IDTokenSigningAlgValuesSupported, []string{"ES256"}) {
		t.Errorf("discovery = %+v", d)
	}
	if !bytes.Equal(gotRaw, raw) {
		t.Errorf("raw JWKS = %s, want %s", gotRaw, raw)
	}
	if len(got.Keys) != 2 || got.Keys[0].ID != ks.Keys[0].ID || got.Keys[1].ID != ks.Keys[1].ID {
		t.Errorf("keys = %+v, want the kids %s, %s", got.Keys, ks.Keys[0].ID, ks.Keys[1].ID)
	}
}

// Each way Fetch can fail says which document and why; a refusal names the
// ClusterRole that grants the read.
func TestFetchErrors(t *testing.T) {
	_, raw := keySet(t)
	const role = "(needs ClusterRole system:service-account-issuer-discovery)"
	for _, tc := range []struct {
		name            string
		discovery, jwks []byte
		fail            map[string]int
		want            string
	}{
		{"discovery forbidden", nil, raw, map[string]int{"/.well-known/openid-configuration": 403},
			"the cluster refused /.well-known/openid-configuration " + role},
		{"discovery unauthorized", nil, raw, map[string]int{"/.well-known/openid-configuration": 401},
			"the cluster refused /.well-known/openid-configuration " + role},
		{"jwks forbidden", discoveryDoc(t), raw, map[string]int{"/openid/v1/jwks": 403},
			"the cluster refused /openid/v1/jwks " + role},
		{"discovery not served", nil, raw, map[string]int{"/.well-known/openid-configuration": 404},
			"GET /.well-known/openid-configuration: "},
		{"discovery not JSON", []byte("<html>"), raw, nil,
			"the cluster's discovery document is not JSON: "},
		{"jwks not a JWKS", discoveryDoc(t), []byte(`{"issuer":"x"}`), nil,
			"the cluster's JWKS: not a JWKS document"},
		{"jwks with a private key", discoveryDoc(t), []byte(`{"keys":[{"kty":"EC","d":"AAAA"}]}`), nil,
			"the cluster's JWKS: JWKS key 0 holds private key material"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ks, b, err := oidc.Fetch(context.Background(), apiserver(t, tc.discovery, tc.jwks, tc.fail))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || d != nil || ks != nil || b != nil {
				t.Errorf("got %v, %v, %s, error %v; want nothing and an error starting %q", d, ks, b, err, tc.want)
			}
		})
	}
}

// fetched is what Fetch would return for a cluster whose issuer is
// clusterIssuer and signs with ES256.
func fetched(t *testing.T) (*jwt.Discovery, []byte, *jwt.KeySet) {
	ks, raw := keySet(t)
	return &jwt.Discovery{Issuer: clusterIssuer, JWKSURI: "https://10.0.0.1:6443/openid/v1/jwks", IDTokenSigningAlgValuesSupported: []string{"ES256"}}, raw, ks
}

// Each layout puts the JWKS at its path under the issuer; the discovery
// document is always at .well-known/openid-configuration, names the issuer
// as given and points jwks_uri at the published JWKS (not at the cluster's
// internal one). Files[i] is served at URLs[i].
func TestWriteLayouts(t *testing.T) {
	for _, tc := range []struct {
		layout, issuer string
		wantIssuer     string // in the document and the Export
		wantJWKS       string // the JWKS file, relative to dir
		wantJWKSURI    string
	}{
		{"kube", "https://oidc.example.com/cluster-a", "https://oidc.example.com/cluster-a",
			"openid/v1/jwks", "https://oidc.example.com/cluster-a/openid/v1/jwks"},
		{"keys.json", "https://oidc.example.com/cluster-a", "https://oidc.example.com/cluster-a",
			"keys.json", "https://oidc.example.com/cluster-a/keys.json"},
		// A trailing slash stays in the issuer (tokens carry it as is) but
		// is not doubled in the URLs.
		{"kube", "https://oidc.example.com/b/", "https://oidc.example.com/b/",
			"openid/v1/jwks", "https://oidc.example.com/b/openid/v1/jwks"},
		// No issuer given: the cluster's own.
		{"kube", "", clusterIssuer, "openid/v1/jwks", clusterIssuer + "/openid/v1/jwks"},
	} {
		t.Run(tc.layout+" "+tc.issuer, func(t *testing.T) {
			d, raw, ks := fetched(t)
			dir := filepath.Join(t.TempDir(), "site")
			out, err := oidc.Write(d, raw, ks, dir, tc.issuer, tc.layout, false)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(tc.wantIssuer, "/")
			want := &oidc.Export{
				Issuer: tc.wantIssuer, ClusterIssuer: clusterIssuer, JWKSURI: tc.wantJWKSURI,
				KeyIDs: []string{ks.Keys[0].ID, ks.Keys[1].ID},
				Files:  []string{filepath.Join(dir, ".well-known", "openid-configuration"), filepath.Join(dir, filepath.FromSlash(tc.wantJWKS))},
				URLs:   []string{base + "/.well-known/openid-configuration", tc.wantJWKSURI},
			}
			if !reflect.DeepEqual(out, want) {
				t.Errorf("export =\n%+v\nwant\n%+v", out, want)
			}

			b, err := os.ReadFile(want.Files[0])
			if err != nil {
				t.Fatal(err)
			}
			var doc jwt.Discovery
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("discovery document %s: %v", b, err)
			}
			wantDoc := jwt.Discovery{Issuer: tc.wantIssuer, JWKSURI: tc.wantJWKSURI, ResponseTypesSupported: []string{"id_token"},
				SubjectTypesSupported: []string{"public"}, IDTokenSigningAlgValuesSupported: []string{"ES256"}}
			if !reflect.DeepEqual(doc, wantDoc) {
				t.Errorf("discovery document = %+v, want %+v", doc, wantDoc)
			}
			// The JWKS is the cluster's, byte for byte, plus a final newline.
			if b, err := os.ReadFile(want.Files[1]); err != nil || !bytes.Equal(b, append(append([]byte{}, raw...), '\n')) {
				t.Errorf("JWKS file = %q, %v; want the served bytes and a newline", b, err)
			}
			// Nothing else in the folder: no leftover temporary files and no
			// file of the other layout.
			var files []string
			_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					files = append(files, p)
				}
				return err
			})
			if !reflect.DeepEqual(files, want.Files) { // WalkDir is lexical: .well-known first
				t.Errorf("files in dir = %v, want %v", files, want.Files)
			}
		})
	}
}

// Bad input is refused before anything is written.
func TestWriteRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, issuer, layout, want string
	}{
		{"unknown layout", "https://oidc.example.com", "s3", `layout "s3" is not one of kube, keys.json`},
		{"http issuer", "http://oidc.example.com", "kube", `issuer "http://oidc.example.com" must be an https URL`},
		{"issuer with query", "https://oidc.example.com/?a=b", "kube", "must be an https URL without query or fragment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, raw, ks := fetched(t)
			dir := filepath.Join(t.TempDir(), "site")
			out, err := oidc.Write(d, raw, ks, dir, tc.issuer, tc.layout, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != nil {
				t.Errorf("got %+v, %v; want an error with %q", out, err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dir was created: %v", err)
			}
		})
	}
}

// Existing files are kept unless overwrite is asked for: a second export
// into the same folder fails with fileutil.ErrExists and leaves the first
// one's documents; with overwrite it replaces them.
func TestWriteOverwrite(t *testing.T) {
	d, raw, ks := fetched(t)
	dir := t.TempDir()
	first, err := oidc.Write(d, raw, ks, dir, "https://first.example.com", "kube", false)
	if err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		var out []string
		for _, f := range first.Files {
			b, _ := os.ReadFile(f)
			out = append(out, string(b))
		}
		return out
	}
	before := read()

	if _, err := oidc.Write(d, raw, ks, dir, "https://second.example.com", "kube", false); !errors.Is(err, fileutil.ErrExists) {
		t.Fatalf("second write without overwrite: %v, want ErrExists", err)
	}
	if got := read(); !reflect.DeepEqual(got, before) {
		t.Errorf("refused write changed the files:\n%q\nwant\n%q", got, before)
	}

	if _, err := oidc.Write(d, raw, ks, dir, "https://second.example.com", "kube", true); err != nil {
		t.Fatalf("with overwrite: %v", err)
	}
	if got := read(); !strings.Contains(got[0], `"issuer": "https://second.example.com"`) {
		t.Errorf("overwrite kept the old discovery document:\n%s", got[0])
	}
}

// The documents are public: files 0644, folders as a 0755 MkdirAll makes
// them under this process's umask (a folder made here the same way is the
// reference, so the test does not depend on the umask).
func TestWriteModes(t *testing.T) {
	d, raw, ks := fetched(t)
	root := t.TempDir()
	dir := filepath.Join(root, "site")
	out, err := oidc.Write(d, raw, ks, dir, "", "kube", false)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(root, "ref")
	if err := os.Mkdir(ref, 0o755); err != nil {
		t.Fatal(err)
	}
	refSt, _ := os.Stat(ref)
	for _, f := range out.Files {
		if st, err := os.Stat(f); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", f, st.Mode().Perm())
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, ".well-known"), filepath.Join(dir, "openid"), filepath.Join(dir, "openid", "v1")} {
		if st, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != refSt.Mode().Perm() {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), refSt.Mode().Perm())
		}
	}
}
