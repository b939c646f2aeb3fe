package keys

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

func TestGenerateEveryType(t *testing.T) {
	for _, typ := range Types {
		for _, pkcs8 := range []bool{false, true} {
			p, err := Generate(typ, pkcs8)
			if err != nil {
				t.Fatal(err)
			}
			priv, err := jwt.ParsePEM(p.PrivatePEM)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := jwt.ParsePEM(p.PublicPEM)
			if err != nil {
				t.Fatal(err)
			}
			if priv.Keys[0].ID != p.KeyID || pub.Keys[0].ID != p.KeyID {
				t.Errorf("%s: kid %s, private %s, public %s", typ, p.KeyID, priv.Keys[0].ID, pub.Keys[0].ID)
			}
			wantHeader := map[string]string{"rsa2048": "RSA PRIVATE KEY", "rsa4096": "RSA PRIVATE KEY", "ec256": "EC PRIVATE KEY"}[typ]
			if pkcs8 {
				wantHeader = "BEGIN PRIVATE KEY"
			}
			if !strings.Contains(string(p.PrivatePEM), wantHeader) || !strings.Contains(string(p.PublicPEM), "BEGIN PUBLIC KEY") {
				t.Errorf("%s pkcs8=%v: PEM types wrong", typ, pkcs8)
			}
		}
	}
	if _, err := Generate("dsa", false); err == nil {
		t.Fatal("dsa accepted")
	}
}

func TestWriteFilesModesAndNoOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	p, _ := Generate("ec256", false)
	if err := p.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{PrivateFile, PublicFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, st.Mode())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode().Perm())
	}
	before, _ := os.ReadFile(filepath.Join(dir, PrivateFile))
	q, _ := Generate("ec256", false)
	if err := q.WriteFiles(dir); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("overwrite: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, PrivateFile))
	if string(before) != string(after) {
		t.Fatal("existing private key replaced")
	}
}

func TestSecretFormats(t *testing.T) {
	p, _ := Generate("rsa2048", false)
	s, _ := p.SecretFor("ns", "k", "hypershift")
	if len(s.Data) != 1 || len(s.Data[HyperShiftKey]) == 0 {
		t.Fatalf("hypershift data keys: %v", s.Data)
	}
	s, _ = p.SecretFor("ns", "k", "generic")
	if len(s.Data[PrivateFile]) == 0 || len(s.Data[PublicFile]) == 0 {
		t.Fatal("generic data keys")
	}
	if _, err := p.SecretFor("ns", "k", "vault"); err == nil {
		t.Fatal("unknown format accepted")
	}
	// HyperShift reads only PKCS#1 RSA: EC and PKCS#8 are refused.
	ec, _ := Generate("ec256", false)
	p8, _ := Generate("rsa2048", true)
	for name, k := range map[string]*Pair{"ec256": ec, "pkcs8": p8} {
		if _, err := k.SecretFor("ns", "k", "hypershift"); err == nil || !strings.Contains(err.Error(), "PKCS#1") {
			t.Errorf("%s: hypershift Secret built: %v", name, err)
		}
	}
}

func TestLegacyEmptyKidAndDiscovery(t *testing.T) {
	p, _ := Generate("rsa2048", false)
	ks, _ := jwt.ParsePEM(p.PublicPEM)
	withLegacy := WithLegacyEmptyKid(ks)
	b, _ := withLegacy.MarshalJWKS()
	var doc struct{ Keys []map[string]any }
	_ = json.Unmarshal(b, &doc)
	if len(doc.Keys) != 2 || doc.Keys[0]["kid"] != p.KeyID || doc.Keys[1]["kid"] != nil || doc.Keys[1]["n"] != doc.Keys[0]["n"] {
		t.Fatalf("legacy duplicate: %s", b)
	}
	if again := WithLegacyEmptyKid(withLegacy); len(again.Keys) != 2 {
		t.Fatalf("legacy duplicates added twice: %d", len(again.Keys))
	}
	d, err := Discovery("https://oidc.example.com/a", "", []string{"RS256", "ES256"})
	if err != nil || d.JWKSURI != "https://oidc.example.com/a/openid/v1/jwks" || d.ResponseTypesSupported[0] != "id_token" || d.SubjectTypesSupported[0] != "public" {
		t.Fatalf("discovery %+v %v", d, err)
	}
	for _, bad := range []string{"http://x", "https://x?a=b", "https://x#f", "x"} {
		if _, err := Discovery(bad, "", nil); err == nil {
			t.Errorf("issuer %q accepted", bad)
		}
	}
	if _, err := Discovery("https://x", "", []string{"HS256"}); err == nil {
		t.Error("HS256 advertised")
	}
}
