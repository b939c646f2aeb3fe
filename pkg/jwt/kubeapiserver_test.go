package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Samples from a real kube-apiserver; see testdata/kube-apiserver/README.md.

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kube-apiserver", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKubeAPIServerKeyIDsAndJWKS(t *testing.T) {
	pems := append(sample(t, "rsa.pub"), sample(t, "ec.pub")...)
	ks, err := ParsePEM(pems)
	if err != nil {
		t.Fatal(err)
	}
	served := sample(t, "jwks.json")
	fromServer, err := ParseJWKS(served)
	if err != nil || len(fromServer.Keys) != 2 {
		t.Fatalf("ParseJWKS: %v", err)
	}
	for i, k := range ks.Keys {
		s := fromServer.Keys[i]
		if k.ID != s.ID || k.Algorithm != s.Algorithm {
			t.Errorf("key %d: KeyID/alg %s %s, kube-apiserver says %s %s", i, k.ID, k.Algorithm, s.ID, s.Algorithm)
		}
	}
	ours, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, bytes.TrimSpace(served)) {
		t.Errorf("MarshalJWKS differs from /openid/v1/jwks:\n ours %s\n kube %s", ours, served)
	}
	var d Discovery
	if err := json.Unmarshal(sample(t, "openid-configuration.json"), &d); err != nil || d.JWKSURI != d.Issuer+"/openid/v1/jwks" || len(d.IDTokenSigningAlgValuesSupported) != 2 {
		t.Errorf("discovery document: %+v %v", d, err)
	}
}

func TestKubeAPIServerTokensVerify(t *testing.T) {
	ks, err := ParseJWKS(sample(t, "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	at := func(tok string) func() time.Time {
		d, err := Decode(tok)
		if err != nil || d.Claims.IssuedAt == nil {
			return time.Now
		}
		return func() time.Time { return d.Claims.IssuedAt.Add(time.Minute) }
	}
	for _, tc := range []struct {
		file, issuer, alg, bound string
		legacy                   bool
	}{
		{"rs256-bound-secret.jwt", "https://127.0.0.1:46031", "RS256", "Secret", false},
		{"es256-bound.jwt", "https://127.0.0.1:37363", "ES256", "", false},
		{"rs256-legacy.jwt", LegacyIssuer, "RS256", "", true},
	} {
		tok := strings.TrimSpace(string(sample(t, tc.file)))
		o := Options{Issuers: []string{tc.issuer}, Now: at(tok), RequireExpiry: !tc.legacy}
		if !tc.legacy {
			o.Audiences = []string{"vault"}
		}
		r := Verify(tok, ks, o)
		if !r.Valid() || r.Algorithm != tc.alg || r.Token.Claims.IsLegacy() != tc.legacy || (len(r.Warnings) > 0) != tc.legacy {
			t.Errorf("%s: valid=%v alg=%s errors=%q warnings=%q", tc.file, r.Valid(), r.Algorithm, r.Errors, r.Warnings)
			continue
		}
		if kind, _ := r.Token.BoundObject(); kind != tc.bound {
			t.Errorf("%s: bound to %q", tc.file, kind)
		}
		if ns, name, ok := r.Token.Claims.ServiceAccount(); !ok || ns != "default" || name != "default" {
			t.Errorf("%s: service account %s/%s", tc.file, ns, name)
		}
		if !tc.legacy {
			o.Now = func() time.Time { return r.Token.Claims.Expiry.Add(2 * time.Minute) }
			if r := Verify(tok, ks, o); r.Valid() || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0], "token expired 2m ago (at 20") {
				t.Errorf("%s after exp: %q", tc.file, r.Errors)
			}
		}
		// Another subject, same signature.
		p := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(p[1])
		payload = bytes.Replace(payload, []byte(":default:default"), []byte(":kube-system:default"), 1)
		if r := Verify(p[0]+"."+b64(payload)+"."+p[2], ks, o); r.Valid() || !strings.Contains(r.Errors[0], "signature does not verify") {
			t.Errorf("%s: altered payload: %q", tc.file, r.Errors)
		}
	}
	tok, _ := Decode(string(sample(t, "rs256-legacy.jwt")))
	if l := tok.Claims.Legacy; l == nil || l.SecretName != "legacy-tok" || l.ServiceAccountName != "default" || l.Namespace != "default" {
		t.Errorf("legacy claims %+v", l)
	}
}
