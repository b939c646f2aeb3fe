package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Secrets hygiene: every command runs as the real binary with -v=10 (client-go
// then logs every request and response body) and nothing secret may show:
// no token, private key or legacy Secret data on stderr, none on stdout
// unless the command's job is to print that token, none in error messages
// (they go to stderr); files holding them are 0600 in 0700 folders.
//
// To cover a new command, add a row to hygieneCases (see hygieneCase). Rows
// run in order and share one namespace, so a row may use what an earlier one
// made; register every new secret a row creates with e.secret (or return it
// from the row's after func) so later rows are checked for it too.

// hygieneCase is one command run.
type hygieneCase struct {
	name  string
	args  func(e *hygieneEnv) []string // after --kubeconfig and -v=10
	stdin func(e *hygieneEnv) string   // nil: empty
	code  int                          // expected exit code
	// stdoutTokens: printing freshly minted tokens on stdout is the command's
	// job; they are then registered as secrets for the following rows.
	stdoutTokens bool
	// offline: the command makes no API call (so there is no client-go log
	// to prove that -v=10 took effect).
	offline bool
	// files the command must have written (paths from e.path): each must be
	// 0600 in a 0700 folder.
	files func(e *hygieneEnv) []string
	// after runs when the row passed: register what it created as secrets.
	after func(t *testing.T, e *hygieneEnv, stdout string)
}

// hygieneEnv is what the rows share.
type hygieneEnv struct {
	NS, Kubeconfig, Dir string
	Token               string // a bound token of NS/app, made through the API
	LegacyToken         string // data.token of the legacy Secret NS/app-token
	secrets             map[string]string
}

// secret registers a credential that must not leak from here on.
func (e *hygieneEnv) secret(name, value string) { e.secrets[name] = value }

// path is a path under the test's temp folder.
func (e *hygieneEnv) path(p ...string) string { return filepath.Join(append([]string{e.Dir}, p...)...) }

var hygieneCases = []hygieneCase{
	{name: "version", args: args("version", "--client"), code: 0, offline: true},
	{name: "create bare token", args: func(e *hygieneEnv) []string { return []string{"create", "app", "-n", e.NS} }, code: 0, stdoutTokens: true},
	{name: "create -o json", args: func(e *hygieneEnv) []string { return []string{"create", "app", "-n", e.NS, "-o", "json"} }, code: 0, stdoutTokens: true},
	{name: "create several", args: func(e *hygieneEnv) []string { return []string{"create", "app", "default", "-n", e.NS} }, code: 0, stdoutTokens: true},
	{name: "create --output-file", code: 0,
		args: func(e *hygieneEnv) []string {
			return []string{"create", "app", "-n", e.NS, "--output-file", e.path("out", "app.token")}
		},
		files: func(e *hygieneEnv) []string { return []string{e.path("out", "app.token")} },
		after: registerFileTokens("out/app.token")},
	{name: "create --output-dir", code: 0,
		args: func(e *hygieneEnv) []string {
			return []string{"create", "app", "default", "-n", e.NS, "--output-dir", e.path("tokens")}
		},
		files: func(e *hygieneEnv) []string {
			return []string{e.path("tokens", e.NS, "app.token"), e.path("tokens", e.NS, "default.token")}
		}},
	{name: "create --kubeconfig-out", code: 0,
		args: func(e *hygieneEnv) []string {
			return []string{"create", "app", "-n", e.NS, "--kubeconfig-out", e.path("kc", "app.kubeconfig")}
		},
		files: func(e *hygieneEnv) []string { return []string{e.path("kc", "app.kubeconfig")} }},
	{name: "create fails for a missing ServiceAccount", args: func(e *hygieneEnv) []string { return []string{"create", "ghost", "-n", e.NS} }, code: 1},
	{name: "decode -", args: args("decode", "-"), stdin: bound, code: 0, offline: true},
	{name: "decode --from-secret", args: func(e *hygieneEnv) []string { return []string{"decode", "--from-secret", "app-token", "-n", e.NS} }, code: 0},
	{name: "decode -o json", args: args("decode", "-", "-o", "json"), stdin: bound, code: 0, offline: true},
	{name: "verify - (cluster JWKS)", args: args("verify", "-"), stdin: bound, code: 0},
	{name: "verify --token-review", args: args("verify", "-", "--token-review"), stdin: bound, code: 0},
	{name: "verify --from-secret --token-review", args: func(e *hygieneEnv) []string {
		return []string{"verify", "--from-secret", "app-token", "-n", e.NS, "--token-review"}
	}, code: 0},
	{name: "verify rejects a tampered token", args: args("verify", "-", "-o", "json"), code: 1,
		stdin: func(e *hygieneEnv) string { return e.Token[:len(e.Token)-4] + "AAAA" }},
	{name: "verify --token-review refused by RBAC", args: args("verify", "-", "--token-review", "--as", "nobody"), stdin: bound, code: 2},
	{name: "verify --batch", args: args("verify", "--batch"), stdin: both, code: 0},
	{name: "verify --batch --token-review -o json", args: args("verify", "--batch", "--token-review", "-o", "json"), stdin: both, code: 0},
	{name: "keys generate --out-dir", code: 0, offline: true,
		args:  func(e *hygieneEnv) []string { return []string{"keys", "generate", "--out-dir", e.path("keys")} },
		files: func(e *hygieneEnv) []string { return []string{e.path("keys", "sa.key")} },
		after: func(t *testing.T, e *hygieneEnv, _ string) {
			b, err := os.ReadFile(e.path("keys", "sa.key"))
			if err != nil {
				t.Fatal(err)
			}
			e.secret("generated key file", string(b))
		}},
	{name: "keys generate --secret", code: 0,
		args: func(e *hygieneEnv) []string {
			return []string{"keys", "generate", "--secret", "signing", "-n", e.NS, "--type", "ec256"}
		},
		after: func(t *testing.T, e *hygieneEnv, _ string) {
			s, err := cluster.Client.CoreV1().Secrets(e.NS).Get(context.Background(), "signing", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range s.Data {
				if strings.Contains(string(v), "PRIVATE KEY") {
					e.secret("generated key Secret "+k, string(v))
				}
			}
		}},
	{name: "keys jwks", args: func(e *hygieneEnv) []string { return []string{"keys", "jwks", e.path("keys", "sa.pub")} }, code: 0, offline: true},
	{name: "keys discovery", args: args("keys", "discovery", "--issuer", "https://oidc.example.com/x"), code: 0, offline: true},
	{name: "oidc export", args: func(e *hygieneEnv) []string { return []string{"oidc", "export", "--out-dir", e.path("site")} }, code: 0},
	{name: "doctor", args: func(e *hygieneEnv) []string { return []string{"doctor", "-n", e.NS, "--serviceaccount", "app"} }, code: 0},
	{name: "doctor -o json", args: func(e *hygieneEnv) []string {
		return []string{"doctor", "-n", e.NS, "--serviceaccount", "app", "-o", "json"}
	}, code: 0},
	// The legacy Secret app-token is listed (with its data) by migrate,
	// written to backups, and re-created by restore.
	{name: "migrate audit", args: func(e *hygieneEnv) []string { return []string{"migrate", "-n", e.NS} }, code: 0},
	{name: "migrate audit -o yaml", args: func(e *hygieneEnv) []string { return []string{"migrate", "-n", e.NS, "-o", "yaml"} }, code: 0},
	{name: "migrate --apply", code: 0,
		args: func(e *hygieneEnv) []string {
			return []string{"migrate", "-n", e.NS, "--apply", "--yes", "--include-unknown", "--include-used", "--backup-dir", e.path("bk-inval")}
		},
		files: backupFiles("bk-inval"), after: backedUp("bk-inval")},
	{name: "restore", args: func(e *hygieneEnv) []string { return []string{"restore", "--from", e.path("bk-inval")} }, code: 0},
	{name: "migrate --apply --mode delete", code: 0,
		args: func(e *hygieneEnv) []string {
			// Deletion follows invalidation: label it invalid first (use
			// is tracked since today here, so the verdict is unknown).
			patch := `{"metadata":{"labels":{"kubernetes.io/legacy-token-invalid-since":"2025-01-01"}}}`
			if _, err := cluster.Client.CoreV1().Secrets(e.NS).Patch(context.Background(), "app-token", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				panic(err)
			}
			return []string{"migrate", "-n", e.NS, "--apply", "--yes", "--include-unknown", "--include-used", "--mode", "delete", "--backup-dir", e.path("bk-del"), "-o", "json"}
		},
		files: backupFiles("bk-del"), after: backedUp("bk-del")},
	{name: "restore -o json", args: func(e *hygieneEnv) []string { return []string{"restore", "--from", e.path("bk-del"), "-o", "json"} }, code: 0},
	{name: "restore refuses a tampered backup", code: 2, offline: true,
		args: func(e *hygieneEnv) []string {
			files, _ := filepath.Glob(e.path("bk-del", "secrets", e.NS, "*.json"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				_ = os.WriteFile(f, append(b, '#'), 0o600)
			}
			return []string{"restore", "--from", e.path("bk-del")}
		}},
	// Not OpenShift: both refuse with the reason, after real API calls.
	{name: "wait", args: args("wait", "--timeout", "5s"), code: 2},
	{name: "rotate", args: args("rotate", "issuer", "https://issuer.example.com", "--yes"), code: 2},
}

// backupFiles lists what a migrate --apply into e.path(dir) wrote: its
// index and every backed-up manifest.
func backupFiles(dir string) func(e *hygieneEnv) []string {
	return func(e *hygieneEnv) []string {
		files, _ := filepath.Glob(e.path(dir, "*", e.NS, "*.json"))
		return append(files, e.path(dir, "index.jsonl"))
	}
}

// backedUp fails the step when apply backed nothing up: the point of the
// step is a backup holding the Secret's data.
func backedUp(dir string) func(*testing.T, *hygieneEnv, string) {
	return func(t *testing.T, e *hygieneEnv, _ string) {
		if m, _ := filepath.Glob(e.path(dir, "secrets", e.NS, "*.json")); len(m) == 0 {
			t.Fatalf("migrate --apply backed up no Secret into %s", dir)
		}
	}
}

func args(a ...string) func(*hygieneEnv) []string { return func(*hygieneEnv) []string { return a } }
func bound(e *hygieneEnv) string                  { return e.Token }
func both(e *hygieneEnv) string                   { return e.Token + "\n" + e.LegacyToken + "\n" }

func registerFileTokens(rel string) func(*testing.T, *hygieneEnv, string) {
	return func(t *testing.T, e *hygieneEnv, _ string) {
		b, err := os.ReadFile(e.path(rel))
		if err != nil {
			t.Fatal(err)
		}
		e.secret("token file "+rel, string(b))
	}
}

func TestSecretsHygieneVerbose(t *testing.T) {
	bin := cluster.PluginBinary(t)
	e := newHygieneEnv(t)
	for _, tc := range hygieneCases {
		if !t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--kubeconfig", e.Kubeconfig, "-v=10"}, tc.args(e)...)
			stdin := ""
			if tc.stdin != nil {
				stdin = tc.stdin(e)
			}
			c := exec.Command(bin, args...)
			c.Stdin = strings.NewReader(stdin)
			var stdout, stderr bytes.Buffer
			c.Stdout, c.Stderr = &stdout, &stderr
			err := c.Run()
			code := 0
			var xe *exec.ExitError
			if errors.As(err, &xe) {
				code = xe.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d; last stderr lines:\n%s", code, tc.code, tail(stderr.String(), 5))
			}
			if !tc.offline && !strings.Contains(stderr.String(), "round_trippers.go") {
				t.Errorf("no client-go request logs on stderr: is -v=10 in effect?")
			}
			// Freshly printed tokens are allowed on stdout only.
			fresh := map[string]string{}
			if tc.stdoutTokens {
				for i, tok := range jwtRE.FindAllString(stdout.String(), -1) {
					fresh[fmt.Sprintf("printed token %d", i)] = tok
				}
				if len(fresh) == 0 {
					t.Errorf("the command should print tokens, stdout has none")
				}
			}
			leaks := findLeaks(stderr.String(), e.secrets, true)
			leaks = append(leaks, findLeaks(stderr.String(), fresh, false)...)
			for _, l := range leaks {
				t.Errorf("stderr leaks %s", l)
			}
			if !tc.stdoutTokens {
				for _, l := range findLeaks(stdout.String(), e.secrets, true) {
					t.Errorf("stdout leaks %s", l)
				}
			} else {
				for _, l := range findLeaks(jwtRE.ReplaceAllString(stdout.String(), ""), e.secrets, true) {
					t.Errorf("stdout leaks, besides the printed tokens, %s", l)
				}
			}
			if tc.files != nil {
				for _, f := range tc.files(e) {
					assertPrivate(t, f)
				}
			}
			for k, v := range fresh {
				e.secret(tc.name+" "+k, v)
			}
			if tc.after != nil {
				tc.after(t, e, stdout.String())
			}
		}) {
			// Rows build on each other; later rows would fail for the wrong reason.
			break
		}
	}
}

var (
	jwtRE    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	b64JWTRE = regexp.MustCompile(`ZXlK[A-Za-z0-9+/]{30,}`)
	dumpRE   = regexp.MustCompile(`(?m)^\s+[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2})*[0-9a-f]{2})`)
)

// findLeaks looks for each secret (whole, its last 32 characters, and a
// stretch of its standard base64) in text, also inside the hex dumps
// client-go writes for protobuf bodies; generic also looks for anything
// shaped like a token or a private key.
func findLeaks(text string, secrets map[string]string, generic bool) []string {
	var dumped bytes.Buffer
	for _, m := range dumpRE.FindAllStringSubmatch(text, -1) {
		b, _ := hex.DecodeString(strings.ReplaceAll(strings.ReplaceAll(m[1], "  ", ""), " ", ""))
		dumped.Write(b)
	}
	var leaks []string
	for _, where := range []struct{ name, s string }{{"", text}, {" (in a hex-dumped body)", dumped.String()}} {
		for name, v := range secrets {
			v = strings.TrimSpace(v)
			b64 := base64.StdEncoding.EncodeToString([]byte(v))
			for _, needle := range []string{v, v[max(0, len(v)-32):], b64[min(len(b64), 40):min(len(b64), 80)]} {
				if len(needle) >= 16 && strings.Contains(where.s, needle) {
					leaks = append(leaks, name+where.name)
					break
				}
			}
		}
		if generic {
			if m := jwtRE.FindString(where.s); m != "" {
				leaks = append(leaks, fmt.Sprintf("a token %.20s...%s", m, where.name))
			}
			if m := b64JWTRE.FindString(where.s); m != "" {
				leaks = append(leaks, fmt.Sprintf("a base64 token %.20s...%s", m, where.name))
			}
			if strings.Contains(where.s, "PRIVATE KEY-----\n") || strings.Contains(where.s, `PRIVATE KEY-----\n`) {
				leaks = append(leaks, "a PEM private key"+where.name)
			}
		}
	}
	return leaks
}

func assertPrivate(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() == 0 {
		t.Errorf("%s: mode %v size %d, want 0600 and not empty", path, st.Mode().Perm(), st.Size())
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if dir.Mode().Perm() != 0o700 {
		t.Errorf("%s: folder mode %v, want 0700", filepath.Dir(path), dir.Mode().Perm())
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func newHygieneEnv(t *testing.T) *hygieneEnv {
	t.Helper()
	ctx := context.Background()
	e := &hygieneEnv{NS: cluster.CreateNamespace(t, "hygiene"), Kubeconfig: cluster.Kubeconfig, Dir: t.TempDir(), secrets: map[string]string{}}
	cluster.CreateServiceAccount(t, e.NS, "app")
	_, err := cluster.Client.CoreV1().Secrets(e.NS).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		s, err := cluster.Client.CoreV1().Secrets(e.NS).Get(ctx, "app-token", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		e.LegacyToken = string(s.Data[corev1.ServiceAccountTokenKey])
		return e.LegacyToken != "", nil
	})
	// doctor and "create several" use the namespace's default ServiceAccount.
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		_, err := cluster.Client.CoreV1().ServiceAccounts(e.NS).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	tr, err := cluster.Client.CoreV1().ServiceAccounts(e.NS).CreateToken(ctx, "app", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.Token = tr.Status.Token
	key, err := os.ReadFile(cluster.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	e.secret("bound token", e.Token)
	e.secret("legacy Secret token", e.LegacyToken)
	e.secret("the cluster's signing key", string(key))
	return e
}
