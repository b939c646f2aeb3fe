package cmd

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

// fakeAPI serves the typed calls rotate hosted-cluster makes: Secrets (get,
// create, honouring dryRun=All) and the hosted kube-apiserver Deployment
// (list by name). It records each call as "VERB path" plus " dryRun=All".
type fakeAPI struct {
	mu      sync.Mutex
	secrets map[string]*corev1.Secret // "ns/name"
	calls   []string
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	call := r.Method + " " + r.URL.Path
	if d := r.URL.Query().Get("dryRun"); d != "" {
		call += " dryRun=" + d
	}
	a.calls = append(a.calls, call)
	w.Header().Set("Content-Type", "application/json")
	status := func(err *apierrors.StatusError) {
		w.WriteHeader(int(err.ErrStatus.Code))
		_ = json.NewEncoder(w).Encode(err.ErrStatus)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 6 && parts[4] == "secrets" && r.Method == http.MethodGet:
		s, ok := a.secrets[parts[3]+"/"+parts[5]]
		if !ok {
			status(apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, parts[5]))
			return
		}
		_ = json.NewEncoder(w).Encode(s)
	case len(parts) == 5 && parts[4] == "secrets" && r.Method == http.MethodPost:
		s := &corev1.Secret{}
		_ = json.NewDecoder(r.Body).Decode(s)
		if _, ok := a.secrets[parts[3]+"/"+s.Name]; ok {
			status(apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, s.Name))
			return
		}
		if r.URL.Query().Get("dryRun") == "" {
			a.secrets[parts[3]+"/"+s.Name] = s
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(s)
	case len(parts) == 6 && parts[5] == "deployments":
		_ = json.NewEncoder(w).Encode(&appsv1.DeploymentList{Items: []appsv1.Deployment{{
			ObjectMeta: metav1.ObjectMeta{Name: hypershift.KASDeployment, Namespace: parts[4], Generation: 3}}}})
	default:
		status(apierrors.NewNotFound(schema.GroupResource{Resource: r.URL.Path}, ""))
	}
}

func hostedCluster(signingKey string, conditions ...any) *unstructured.Unstructured {
	spec := map[string]any{"issuerURL": "https://issuer.example.com"}
	if signingKey != "" {
		spec["serviceAccountSigningKey"] = map[string]any{"name": signingKey}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
		"metadata": map[string]any{"name": "prod", "namespace": "clusters", "resourceVersion": "9", "generation": int64(4)},
		"spec":     spec, "status": map[string]any{"conditions": conditions},
	}}
}

func TestRotateHostedCluster(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	old, _ := keys.Generate("rsa2048", false)
	next, _ := keys.Generate("rsa2048", false)
	other, _ := keys.Generate("rsa2048", false)
	ec, _ := keys.Generate("ec256", false)
	oldKid, kid := old.KeyID, next.KeyID
	keyFile, ecFile := write("next.key", next.PrivatePEM), write("ec.key", ec.PrivatePEM)
	newSecret := "prod-sa-signing-key-" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(kid))[:8]
	patch := `{"metadata":{"resourceVersion":"9"},"spec":{"serviceAccountSigningKey":{"name":"` + newSecret + `"}}}`
	invalid := map[string]any{"type": "ValidConfiguration", "status": "False", "observedGeneration": int64(4), "message": "bad key"}

	for _, tc := range []struct {
		name      string
		args      []string
		hc        *unstructured.Unstructured
		wantCode  int
		wantOut   string // exact; "-" skips
		wantErr   string // the last line of stderr
		wantCalls []string
		wantPatch []string
		noYes     bool // run without --yes
	}{
		{
			name: "without --yes and no terminal to ask on, nothing is written", args: []string{"--key", keyFile}, noYes: true,
			wantCode: ExitUsage, wantOut: "",
			wantErr:   "error: rotating the signing key rolls out the hosted kube-apiserver of prod; add --yes to confirm (stdin is not a terminal to ask on); nothing changed",
			wantCalls: []string{"GET /apis/apps/v1/namespaces/clusters-prod/deployments", "GET /api/v1/namespaces/clusters/secrets/old"},
		},
		{
			name: "rotate without waiting", args: []string{"--key", keyFile, "--wait=false"},
			wantOut:   kid + "\n",
			wantErr:   "created Secret clusters/" + newSecret + "; hostedcluster clusters/prod now signs with kid " + kid + " (Secret old of the previous kid " + oldKid + " is kept)",
			wantCalls: []string{"GET /api/v1/namespaces/clusters/secrets/old", "POST /api/v1/namespaces/clusters/secrets"},
			wantPatch: []string{patch},
		},
		{
			name: "server dry run sends both writes with dryRun=All", args: []string{"--key", keyFile, "--dry-run=server"},
			wantOut:   kid + "\n",
			wantErr:   "dry run (server): would create Secret clusters/" + newSecret + " (kid " + kid + ") and point hostedcluster clusters/prod at it",
			wantCalls: []string{"GET /api/v1/namespaces/clusters/secrets/old", "POST /api/v1/namespaces/clusters/secrets dryRun=All"},
			wantPatch: []string{patch + " dryRun=All"},
		},
		{
			name: "client dry run writes nothing", args: []string{"--key", keyFile, "--dry-run=client", "-o", "jsonpath={.kind} {.kid} {.oldKid} {.newSecret}"},
			wantOut:   "SigningKeyRotation " + kid + " " + oldKid + " " + newSecret,
			wantErr:   "old-key.pub keeps trusting kids " + oldKid + " (until ",
			wantCalls: []string{"GET /api/v1/namespaces/clusters/secrets/old"},
		},
		{
			name: "the wait times out after the patch", args: []string{"--key", keyFile, "--timeout", "300ms"},
			wantCode: ExitFailed, wantOut: "",
			wantErr: "error: not confirmed within --timeout 300ms; the patch was made: spec.serviceAccountSigningKey points at Secret " + newSecret + " (kid " + kid + "); " +
				`roll back with: kubectl patch hostedcluster prod -n clusters --type merge -p '{"spec":{"serviceAccountSigningKey":{"name":"old"}}}'`,
			wantCalls: []string{"GET /apis/apps/v1/namespaces/clusters-prod/deployments", "GET /api/v1/namespaces/clusters/secrets/old", "POST /api/v1/namespaces/clusters/secrets"},
			wantPatch: []string{patch},
		},
		{
			name: "ValidConfiguration already False", args: []string{"--key", keyFile}, hc: hostedCluster("old", invalid),
			wantCode: ExitFailed, wantOut: "",
			wantErr: "error: hostedcluster clusters/prod already has ValidConfiguration=False (bad key): HyperShift is not applying its configuration; fix that first; nothing was changed; or add --force to rotate anyway",
		},
		{
			name: "--force rotates anyway", args: []string{"--key", keyFile, "--force", "--wait=false"}, hc: hostedCluster("old", invalid),
			wantOut: kid + "\n", wantErr: "-",
			wantCalls: []string{"GET /api/v1/namespaces/clusters/secrets/old", "POST /api/v1/namespaces/clusters/secrets"},
			wantPatch: []string{patch},
		},
		{
			name: "a Secret of that name holds another key", args: []string{"--key", keyFile, "--secret-name", "taken", "--wait=false"},
			wantCode: ExitUsage, wantOut: "",
			wantErr:   "error: secret clusters/taken already exists and holds another key: refusing to replace a signing key; choose another --secret-name",
			wantCalls: []string{"GET /api/v1/namespaces/clusters/secrets/old", "POST /api/v1/namespaces/clusters/secrets", "GET /api/v1/namespaces/clusters/secrets/taken"},
		},
		{
			name: "issuerURL cannot change", args: []string{"--issuer", "https://other.example.com"},
			wantCode: ExitUsage, wantOut: "",
			wantErr: `error: spec.issuerURL of hostedcluster clusters/prod is immutable after creation (it is "https://issuer.example.com"): it cannot be changed to "https://other.example.com"; only the signing key can be rotated`,
		},
		{
			name: "an EC key", args: []string{"--key", ecFile},
			wantCode: ExitUsage, wantOut: "", wantErr: "error: --key " + ecFile + ": ",
		},
		{
			name: "--generate ec256", args: []string{"--generate", "ec256"},
			wantCode: ExitUsage, wantOut: "",
			wantErr: `error: --generate "ec256": HyperShift reads only RSA signing keys (x509.ParsePKCS1PrivateKey); use one of rsa2048, rsa4096`,
		},
		{
			name: "--key and --generate", args: []string{"--key", keyFile, "--generate", "rsa2048"},
			wantCode: ExitUsage, wantOut: "", wantErr: "error: use --key FILE or --generate rsa2048|rsa4096, not both",
		},
		{
			name: "a bad -o fails before any request", args: []string{"--key", keyFile, "-o", "name"},
			wantCode: ExitUsage, wantOut: "",
			wantErr: `error: --output "name" is not supported; use one of: ` + resultFormats,
		},
		{
			name: "no HostedCluster", args: []string{"--key", keyFile}, hc: &unstructured.Unstructured{},
			wantCode: ExitUsage, wantOut: "", wantErr: "error: hostedcluster clusters/prod not found",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{secrets: map[string]*corev1.Secret{
				"clusters/old":   {ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "clusters"}, Data: map[string][]byte{keys.HyperShiftKey: old.PrivatePEM}},
				"clusters/taken": {ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: "clusters"}, Data: map[string][]byte{keys.HyperShiftKey: other.PrivatePEM}},
			}}
			hc := tc.hc
			if hc == nil {
				hc = hostedCluster("old")
			}
			dyn := newDynamic()
			if hc.Object != nil {
				dyn = newDynamic(hc)
			}
			tf := newAPITestFactory(t, "clusters", dyn, api)
			args := append([]string{"hosted-cluster", "prod"}, tc.args...)
			if !tc.noYes {
				args = append(args, "--yes")
			}
			out, errOut, code := run(t, cmdRun{cmd: NewCmdRotateHostedCluster, f: tf}, "", args...)
			l := lines(errOut)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.wantCode, errOut)
			}
			if tc.wantOut != "-" {
				if diff := cmp.Diff(tc.wantOut, out); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			}
			if tc.wantErr != "-" && (len(l) == 0 || !strings.HasPrefix(l[len(l)-1], tc.wantErr) && !strings.Contains(errOut, tc.wantErr)) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errOut)
			}
			if tc.wantCode != 0 && !strings.HasPrefix(l[len(l)-1], tc.wantErr) {
				t.Errorf("the last line of stderr is not %q:\n%s", tc.wantErr, errOut)
			}
			if diff := cmp.Diff(tc.wantCalls, api.calls); diff != "" {
				t.Errorf("API calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPatch, dyn.patches); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
		})
	}
}

// -o json prints the typed result with the plugin's apiVersion.
func TestRotateHostedClusterJSON(t *testing.T) {
	next, _ := keys.Generate("rsa2048", false)
	kid := next.KeyID
	keyFile := filepath.Join(t.TempDir(), "k")
	_ = os.WriteFile(keyFile, next.PrivatePEM, 0o600)
	tf := newAPITestFactory(t, "clusters", newDynamic(hostedCluster("")), &fakeAPI{secrets: map[string]*corev1.Secret{}})
	out, errOut, code := run(t, cmdRun{cmd: NewCmdRotateHostedCluster, f: tf}, "", "hosted-cluster", "prod", "--key", keyFile, "--wait=false", "--secret-name", "k1", "-o", "json", "--yes")
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	want := map[string]any{"apiVersion": "bound-token.kubectl.io/v1alpha1", "kind": "SigningKeyRotation",
		"hostedCluster": "clusters/prod", "issuerURL": "https://issuer.example.com", "newSecret": "k1", "kid": kid, "generation": float64(4)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-o json (-want +got):\n%s", diff)
	}
}
