package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPrivateKeepsTheKeyAndItsKid(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"rsa2048", "ec256"} {
		for _, pkcs8 := range []bool{false, true} {
			p, err := Generate(typ, pkcs8)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, typ+".pem")
			// A public key block first: skipped, only the private one is kept.
			_ = os.WriteFile(f, append(append([]byte{}, p.PublicPEM...), p.PrivatePEM...), 0o600)
			got, err := LoadPrivate(f)
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyID != p.KeyID || string(got.PrivatePEM) != string(p.PrivatePEM) {
				t.Errorf("%s pkcs8=%v: kid %s want %s", typ, pkcs8, got.KeyID, p.KeyID)
			}
		}
	}
	pub, _ := Generate("ec256", false)
	f := filepath.Join(dir, "pub.pem")
	_ = os.WriteFile(f, pub.PublicPEM, 0o600)
	if _, err := LoadPrivate(f); err == nil || !strings.Contains(err.Error(), "holds no PEM private key") {
		t.Fatal(err)
	}
}
