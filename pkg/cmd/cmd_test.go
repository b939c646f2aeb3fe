package cmd

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/internal/testsigner"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// testToken is an RS256 token with the kid kube-apiserver would give key,
// signed by the module's one test signer.
func testToken(t *testing.T, key *rsa.PrivateKey, payload map[string]any) string {
	t.Helper()
	kid, err := jwt.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testsigner.Sign(key, map[string]any{"alg": "RS256", "kid": kid}, payload)
}

func TestUsageShowsKubectlPrefix(t *testing.T) {
	out, _, code := run(t, cmdRun{}, "", "create", "--help")
	if code != 0 || !strings.Contains(out, "kubectl bound-token create SERVICEACCOUNT") || !strings.Contains(out, "Examples:") {
		t.Fatalf("help:\n%s", out)
	}
}

func TestDecodeAndVerifyOffline(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(t.TempDir(), "sa.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := testToken(t, key, map[string]any{
		"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:api", "aud": []string{"vault"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "ns", "serviceaccount": map[string]any{"name": "api", "uid": "u1"},
			"secret": map[string]any{"name": "s", "uid": "u2"}},
	})

	out, _, code := run(t, cmdRun{}, tok, "decode", "-")
	for _, want := range []string{"NOT VERIFIED", "bound token", "https://issuer.example", "(in 59m)", "Bound to Secret:", "s (uid u2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("decode output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Fatalf("decode exit %d", code)
	}
	out, _, code = run(t, cmdRun{}, tok, "decode", "-", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "legacy: false") || !strings.Contains(out, "verified: false") {
		t.Fatalf("decode -o yaml:\n%s", out)
	}

	// Offline verification: no cluster is contacted with --public-key.
	if out, errOut, code := run(t, cmdRun{}, tok, "verify", "-", "--public-key", pub, "--audience", "vault"); code != 0 {
		t.Fatalf("verify exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = run(t, cmdRun{}, tok, "verify", "-", "--public-key", pub, "--issuer", "https://other", "-o", "json")
	var v struct {
		Verified bool
		Errors   []string
	}
	if code != ExitFailed || json.Unmarshal([]byte(out), &v) != nil || v.Verified || len(v.Errors) != 1 {
		t.Fatalf("wrong issuer: code %d\n%s", code, out)
	}
	if strings.Contains(out, strings.Split(tok, ".")[2]) {
		t.Fatal("verify output contains the token's signature")
	}
	// Could not verify: keys unreadable, or no cluster to ask.
	if _, _, code := run(t, cmdRun{}, tok, "verify", "-", "--public-key", pub+".missing"); code != ExitUsage {
		t.Fatalf("missing key file: exit %d", code)
	}
	if _, _, code := run(t, cmdRun{}, tok, "verify", "-"); code != ExitUsage {
		t.Fatalf("no cluster: exit %d", code)
	}
	// Token file and flag conflicts.
	file := filepath.Join(t.TempDir(), "token")
	_ = os.WriteFile(file, []byte(tok+"\n"), 0o600)
	if _, _, code := run(t, cmdRun{}, "", "verify", "--token-file", file, "--public-key", pub); code != 0 {
		t.Fatalf("--token-file: exit %d", code)
	}
	if _, errOut, code := run(t, cmdRun{}, tok, "verify", "-", "--token-file", file, "--public-key", pub); code != ExitUsage || !strings.Contains(errOut, "one way only") {
		t.Fatalf("two inputs: exit %d %s", code, errOut)
	}

}

func TestHostileClaimsCannotDriveTheTerminal(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tok := testToken(t, key, map[string]any{
		"iss": "\x1b[2J\x1b[HVERIFIED", "sub": "system:serviceaccount:ns:\u009b31m", "exp": time.Now().Add(time.Hour).Unix(),
	})
	out, _, _ := run(t, cmdRun{}, tok, "decode", "-")
	if strings.ContainsAny(out, "\x1b\u009b") {
		t.Fatalf("decode printed raw control characters: %q", out)
	}
	if !strings.Contains(out, `\x1b[2J`) {
		t.Fatalf("escaped issuer missing: %q", out)
	}
}

// The root help names the tool's jobs, prints the exit codes one per line,
// and every --help hint names the command as users type it.
func TestRootHelp(t *testing.T) {
	out, _, code := run(t, cmdRun{}, "", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"move a cluster off legacy token Secrets", "migrate audits", "restore brings them back", "doctor checks",
		"\n    0  success", "\n    1  the answer is no", "\n    2  nothing was checked or changed",
		`Use "kubectl bound-token <command> --help" for more information`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("root help lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{{"oidc", "--help"}, {"keys", "--help"}} {
		out, _, _ := run(t, cmdRun{}, "", args...)
		want := `Use "kubectl bound-token ` + args[0] + ` <command> --help"`
		if !strings.Contains(out, want) {
			t.Errorf("%s --help lacks %q:\n%s", args[0], want, out)
		}
	}
}
