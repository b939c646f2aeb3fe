package cmd

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/rest/fake"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

// A command test: args, stdin, and what the user sees. want* empty means
// "not checked"; wantErr is the whole stderr.
type cmdCase struct {
	name       string
	args       []string
	stdin      string
	wantCode   int
	wantOut    string // exact stdout
	wantOutHas []string
	wantErr    string
}

// runCase runs the command with (named name, so that args follow it) on
// tc.stdin and checks exit code, stdout and stderr; it returns the unread
// stdin.
func runCase(t *testing.T, tc cmdCase, with cmdRun, name string) string {
	t.Helper()
	var left string
	with.unread = &left
	out, errOut, code := run(t, with, tc.stdin, append([]string{name}, tc.args...)...)
	if code != tc.wantCode {
		t.Errorf("exit %d, want %d; stderr %q", code, tc.wantCode, errOut)
	}
	if tc.wantOut != "" {
		if diff := cmp.Diff(tc.wantOut, out); diff != "" {
			t.Errorf("stdout (-want +got):\n%s", diff)
		}
	}
	for _, s := range tc.wantOutHas {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if tc.wantErr != "" {
		if diff := cmp.Diff(tc.wantErr, errOut); diff != "" {
			t.Errorf("stderr (-want +got):\n%s", diff)
		}
	}
	return left
}

const resultFormats = "json, yaml, kyaml, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file"

func TestVersionCommand(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	defer server.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }))
	defer down.Close()
	for _, tc := range []struct {
		cmdCase
		host string
	}{
		{cmdCase{name: "with the server's", wantOutHas: []string{"kubectl bound-token dev (commit", "\nServer: Kubernetes v1.37.2\n"}}, server.URL},
		{cmdCase{name: "json with the server's", args: []string{"-o", "jsonpath={.version} {.serverVersion.gitVersion}"}, wantOut: "dev v1.37.2"}, server.URL},
		// As kubectl version: the plugin's line, then the error, exit 1.
		{cmdCase{name: "server down", wantCode: ExitFailed, wantOutHas: []string{"kubectl bound-token dev"}}, down.URL},
		{cmdCase{name: "--client asks no server", args: []string{"--client", "-o", "json"}, wantOutHas: []string{"\"version\": \"dev\""}}, down.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTestFactory(t)
			tf.ClientConfigVal = &rest.Config{Host: tc.host}
			runCase(t, tc.cmdCase, cmdRun{cmd: NewCmdVersion, f: tf}, "version")
		})
	}
	for _, tc := range []cmdCase{
		{name: "table", args: []string{"--client"}, wantOutHas: []string{"kubectl bound-token dev (commit unknown, built unknown, go"}},
		{name: "json", args: []string{"--client", "-o", "json"}, wantOutHas: []string{"{\n    \"apiVersion\": \"bound-token.kubectl.io/v1alpha1\",\n    \"kind\": \"Version\",\n    \"version\": \"dev\",\n"}},
		{name: "yaml", args: []string{"--client", "-o", "yaml"}, wantOutHas: []string{"apiVersion: bound-token.kubectl.io/v1alpha1\n", "kind: Version\n", "version: dev\n"}},
		{name: "jsonpath", args: []string{"--client", "-o", "jsonpath={.kind} {.version}"}, wantOut: "Version dev"},
		{name: "go-template", args: []string{"--client", "-o", "go-template={{.commit}}"}, wantOut: "unknown"},
		{name: "--template alone", args: []string{"--client", "--template", "{{.date}}"}, wantOut: "unknown"},
		{name: "name has no name", args: []string{"-o", "name"}, wantCode: ExitUsage, wantErr: `error: --output "name" is not supported; use one of: ` + resultFormats + "\n"},
		{name: "bad -o", args: []string{"-o", "xml"}, wantCode: ExitUsage, wantErr: `error: --output "xml" is not supported; use one of: ` + resultFormats + "\n"},
		{name: "argument", args: []string{"x"}, wantCode: ExitUsage, wantErr: "error: unknown command \"x\" for \"kubectl bound-token version\"; see 'kubectl bound-token version --help' for usage\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCase(t, tc, cmdRun{cmd: NewCmdVersion}, "version")
		})
	}
}

func TestDecodeCommand(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := testToken(t, key, map[string]any{"iss": "https://issuer.example", "sub": "system:serviceaccount:app:api", "aud": []string{"vault"},
		"exp": time.Now().Add(time.Hour).Unix(), "kubernetes.io": map[string]any{"namespace": "app", "serviceaccount": map[string]any{"name": "api", "uid": "u1"}}})
	for _, tc := range []cmdCase{
		{name: "table", args: []string{"-"}, stdin: tok, wantOutHas: []string{"NOT VERIFIED: decode only shows what the token says", "Subject:", "system:serviceaccount:app:api"}, wantErr: "-"},
		{name: "json", args: []string{"-", "-o", "json"}, stdin: tok, wantOutHas: []string{"\"apiVersion\": \"bound-token.kubectl.io/v1alpha1\",\n    \"kind\": \"DecodedToken\",", "\"verified\": false"}},
		{name: "jsonpath", args: []string{"-", "-o", "jsonpath={.payload.sub}"}, stdin: tok, wantOut: "system:serviceaccount:app:api"},
		{name: "go-template", args: []string{"-", "-o", "go-template={{.legacy}}"}, stdin: tok, wantOut: "false"},
		{name: "no token", wantCode: ExitUsage, wantErr: "error: no token given: pass TOKEN, - (stdin), --token-file FILE or --from-secret NAME\n"},
		{name: "two ways", args: []string{"-", "--token-file", "f"}, wantCode: ExitUsage, wantErr: "error: give the token one way only: TOKEN, -, --token-file or --from-secret\n"},
		{name: "not a token", args: []string{"-"}, stdin: "nope", wantCode: ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr == "-" {
				tc.wantErr = ""
			}
			runCase(t, tc, cmdRun{cmd: NewCmdDecode}, "decode")
		})
	}
	// A bad -o fails before the token is read: stdin is left untouched.
	t.Run("bad -o reads nothing", func(t *testing.T) {
		left := runCase(t, cmdCase{args: []string{"-", "-o", "wide"}, stdin: tok, wantCode: ExitUsage,
			wantErr: `error: --output "wide" is not supported; use one of: ` + resultFormats + "\n"},
			cmdRun{cmd: NewCmdDecode}, "decode")
		if left != tok {
			t.Errorf("stdin was read before -o was checked: %d bytes left", len(left))
		}
	})
}

func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	keysCmd := cmdRun{cmd: NewCmdKeys}
	runCase(t, cmdCase{args: []string{"generate", "--out-dir", filepath.Join(dir, "a"), "--type", "ec256"}}, keysCmd, "keys")
	pub, err := os.ReadFile(filepath.Join(dir, "a", keys.PublicFile))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := jwt.ParsePEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	kid := ks.Keys[0].ID
	for _, tc := range []cmdCase{
		{name: "generate -o json", args: []string{"generate", "--out-dir", filepath.Join(dir, "b"), "-o", "json"},
			wantOutHas: []string{"\"kind\": \"SigningKey\"", "\"type\": \"rsa2048\"", filepath.Join(dir, "b", keys.PrivateFile)}},
		{name: "generate -o jsonpath", args: []string{"generate", "--out-dir", filepath.Join(dir, "c"), "-o", "jsonpath={.type}", "--type", "ec256"}, wantOut: "ec256"},
		{name: "generate keeps an existing key", args: []string{"generate", "--out-dir", filepath.Join(dir, "a")}, wantCode: ExitFailed,
			wantErr: "error: " + filepath.Join(dir, "a", keys.PrivateFile) + " already exists: refusing to replace a signing key; choose another --out-dir\n"},
		{name: "generate needs a place", args: []string{"generate"}, wantCode: ExitUsage, wantErr: "error: say where the key goes: --out-dir DIR, --secret NAME, or both\n"},
		{name: "generate bad type", args: []string{"generate", "--out-dir", dir, "--type", "dsa"}, wantCode: ExitUsage, wantErr: "error: --type \"dsa\" is not supported; use one of rsa2048, rsa4096, ec256\n"},
		{name: "generate bad format", args: []string{"generate", "--secret", "s", "--format", "x"}, wantCode: ExitUsage, wantErr: "error: --format \"x\" is not supported; use generic or hypershift\n"},
		{name: "generate bad -o", args: []string{"generate", "--out-dir", filepath.Join(dir, "d"), "-o", "name"}, wantCode: ExitUsage,
			wantErr: `error: --output "name" is not supported; use one of: ` + resultFormats + "\n"},
		{name: "jwks", args: []string{"jwks", filepath.Join(dir, "a", keys.PublicFile)}, wantOutHas: []string{`"kid":"` + kid + `"`, `"alg":"ES256"`}},
		{name: "jwks needs keys", args: []string{"jwks"}, wantCode: ExitUsage, wantErr: "error: name key files or --from-configmap NS/NAME\n"},
		{name: "jwks bad configmap", args: []string{"jwks", "--from-configmap", "x"}, wantCode: ExitUsage, wantErr: "error: --from-configmap \"x\": want NAMESPACE/NAME\n"},
		{name: "discovery", args: []string{"discovery", "--issuer", "https://oidc.example.com/a"}, wantOutHas: []string{`"jwks_uri": "https://oidc.example.com/a/openid/v1/jwks"`}},
		{name: "discovery needs an issuer", args: []string{"discovery"}, wantCode: ExitUsage, wantErr: "error: --issuer is required\n"},
		{name: "discovery names the flag", args: []string{"discovery", "--issuer", "http://x"}, wantCode: ExitUsage, wantErr: "error: --issuer \"http://x\" must be an https URL without query or fragment\n"},
		{name: "discovery bad alg", args: []string{"discovery", "--issuer", "https://x", "--alg", "HS256"}, wantCode: ExitUsage, wantErr: "error: --alg \"HS256\" is not one kube-apiserver signs with (RS256, ES256, ES384, ES512)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc, keysCmd, "keys") })
	}
	// -o's printer is built before the key: a bad -o writes nothing.
	if _, err := os.Stat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Errorf("generate -o name wrote %s: %v", filepath.Join(dir, "d"), err)
	}
}

// discoveryServer is a fake REST client serving the cluster's issuer
// documents.
func discoveryServer(t *testing.T) *fake.RESTClient {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	k, err := jwt.NewKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := (&jwt.KeySet{Keys: []jwt.Key{k}}).MarshalJWKS()
	disc, _ := json.Marshal(map[string]any{"issuer": "https://kubernetes.default.svc", "jwks_uri": "https://10.0.0.1/openid/v1/jwks",
		"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	return &fake.RESTClient{Client: fake.CreateHTTPClient(func(req *http.Request) (*http.Response, error) {
		body := map[string][]byte{"/.well-known/openid-configuration": disc, "/openid/v1/jwks": jwks}[req.URL.Path]
		if body == nil {
			return &http.Response{StatusCode: http.StatusNotFound, Header: cmdHeader(), Body: io.NopCloser(strings.NewReader("{}"))}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Header: cmdHeader(), Body: io.NopCloser(bytes.NewReader(body))}, nil
	})}
}

func cmdHeader() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return h
}

func TestOIDCExportCommand(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	for _, tc := range []cmdCase{
		{name: "json", args: []string{"export", "--out-dir", site, "--issuer", "https://oidc.example.com/a", "-o", "json"},
			wantOutHas: []string{"\"kind\": \"OIDCExport\"", "\"issuer\": \"https://oidc.example.com/a\"", "\"jwksURI\": \"https://oidc.example.com/a/openid/v1/jwks\""}},
		{name: "existing files", args: []string{"export", "--out-dir", site}, wantCode: ExitFailed,
			wantErr: "error: " + filepath.Join(site, ".well-known", "openid-configuration") + ": file exists; pass --overwrite to replace it\n"},
		{name: "overwrite, table", args: []string{"export", "--out-dir", site, "--overwrite", "--layout", "keys.json"},
			wantOutHas: []string{"issuer:   https://kubernetes.default.svc\n", "wrote     " + filepath.Join(site, "keys.json") + "\n"}},
		{name: "jsonpath", args: []string{"export", "--out-dir", filepath.Join(dir, "b"), "-o", "jsonpath={.files[1]}"}, wantOut: filepath.Join(dir, "b", "openid", "v1", "jwks")},
		{name: "bad issuer names the flag", args: []string{"export", "--out-dir", filepath.Join(dir, "c"), "--issuer", "http://x"}, wantCode: ExitUsage,
			wantErr: "error: --issuer \"http://x\" must be an https URL without query or fragment\n"},
		{name: "needs --out-dir", args: []string{"export"}, wantCode: ExitUsage, wantErr: "error: --out-dir is required\n"},
		{name: "bad layout", args: []string{"export", "--out-dir", dir, "--layout", "s3"}, wantCode: ExitUsage, wantErr: "error: --layout \"s3\" is not supported; use kube or keys.json\n"},
		{name: "bad -o", args: []string{"export", "--out-dir", filepath.Join(dir, "d"), "-o", "wide"}, wantCode: ExitUsage,
			wantErr: `error: --output "wide" is not supported; use one of: ` + resultFormats + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTestFactory(t)
			tf.Client = discoveryServer(t)
			runCase(t, tc, cmdRun{cmd: NewCmdOIDC, f: tf}, "oidc")
		})
	}
	for _, d := range []string{"c", "d"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("a refused export wrote %s", d)
		}
	}
}

// The commands that read the cluster refuse bad flags before they touch it:
// the test factory's client would fail any request.
func TestReadingCommandsRefuseBadFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd func(cmdutil.Factory, genericiooptions.IOStreams) *cobra.Command
		use string
		cmdCase
	}{
		{NewCmdWait, "wait", cmdCase{name: "wait timeout", args: []string{"--timeout", "0s"}, wantCode: ExitUsage, wantErr: "error: --timeout must be positive\n"}},
		{NewCmdWait, "wait", cmdCase{name: "wait revision", args: []string{"--since-revision", "-5"}, wantCode: ExitUsage, wantErr: "error: --since-revision must be 0 or more\n"}},
		{NewCmdWait, "wait", cmdCase{name: "wait -o", args: []string{"-o", "name"}, wantCode: ExitUsage, wantErr: `error: --output "name" is not supported; use one of: ` + resultFormats + "\n"}},
		{NewCmdDoctor, "doctor", cmdCase{name: "doctor -o", args: []string{"-o", "wide"}, wantCode: ExitUsage, wantErr: `error: --output "wide" is not supported; use one of: ` + resultFormats + "\n"}},
		{NewCmdDoctor, "doctor", cmdCase{name: "doctor timeout", args: []string{"--issuer-timeout", "0s"}, wantCode: ExitUsage, wantErr: "error: --issuer-timeout must be positive\n"}},
		{NewCmdDoctor, "doctor", cmdCase{name: "doctor sa", args: []string{"--serviceaccount", ""}, wantCode: ExitUsage, wantErr: "error: --serviceaccount must not be empty\n"}},
		{NewCmdDoctor, "doctor", cmdCase{name: "doctor ca", args: []string{"--issuer-ca", "/nonexistent/ca.crt"}, wantCode: ExitUsage}},
		{NewCmdCreate, "create", cmdCase{name: "create -o", args: []string{"sa", "-o", "wide"}, wantCode: ExitUsage,
			wantErr: `error: --output "wide" is not supported; use one of: json, yaml, kyaml, name, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file` + "\n"}},
		{NewCmdCreate, "create", cmdCase{name: "create short duration", args: []string{"sa", "--duration", "9m"}, wantCode: ExitUsage,
			wantErr: "error: --duration 9m0s is shorter than the 10m minimum that kube-apiserver accepts\n"}},
		{NewCmdCreate, "create", cmdCase{name: "create bound kind", args: []string{"sa", "--bound-object-kind", "Deployment", "--bound-object-name", "d"}, wantCode: ExitUsage,
			wantErr: "error: --bound-object-kind \"Deployment\" is not supported; use one of Node, Pod, Secret\n"}},
		{NewCmdCreate, "create", cmdCase{name: "create bound name", args: []string{"sa", "--bound-object-kind", "Pod"}, wantCode: ExitUsage,
			wantErr: "error: --bound-object-name is needed to bind to a Pod\n"}},
		{NewCmdCreate, "create", cmdCase{name: "create bound uid alone", args: []string{"sa", "--bound-object-uid", "u"}, wantCode: ExitUsage,
			wantErr: "error: --bound-object-kind is needed to bind to a name or uid (one of Node, Pod, Secret)\n"}},
		{NewCmdCreate, "create", cmdCase{name: "create nothing", wantCode: ExitUsage, wantErr: "error: name a ServiceAccount, or select several with -l SELECTOR or -A\n"}},
		{NewCmdCreate, "create", cmdCase{name: "create -o and file", args: []string{"sa", "-o", "json", "--output-file", "f"}, wantCode: ExitUsage,
			wantErr: "error: -o prints tokens on stdout; it cannot be combined with --output-file or --output-dir\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCase(t, tc.cmdCase, cmdRun{cmd: tc.cmd}, tc.use)
		})
	}
}
