package doctor

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

func resources(gv string, names ...string) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: gv}
	for _, n := range names {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: n})
	}
	return l
}

func TestAdmissionPolicies(t *testing.T) {
	const g = "admissionregistration.k8s.io/"
	vap := "validatingadmissionpolicies"
	for _, tc := range []struct {
		name   string
		served []*metav1.APIResourceList
		err    error
		want   Status
		in     string
	}{
		{"v1 (1.36+)", []*metav1.APIResourceList{resources(g+"v1", vap, mapResource), resources(g+"v1beta1", mapResource)}, nil, Pass, "served at admissionregistration.k8s.io/v1:"},
		// 1.34 with the gate and v1beta1 on: v1 is served without the resource.
		{"v1beta1 (1.34/1.35 with gate and runtime-config)", []*metav1.APIResourceList{resources(g+"v1", vap), resources(g+"v1beta1", mapResource)}, nil, Pass, "served at admissionregistration.k8s.io/v1beta1 (beta"},
		{"v1alpha1 only", []*metav1.APIResourceList{resources(g+"v1", vap), resources(g+"v1alpha1", mapResource)}, nil, Warn, "only at admissionregistration.k8s.io/v1alpha1"},
		// 1.34's default: v1 serves ValidatingAdmissionPolicy, no beta, no alpha.
		{"not served", []*metav1.APIResourceList{resources(g+"v1", vap)}, nil, Warn, "not served"},
		{"discovery refused", nil, apierrors.NewForbidden(schema.GroupResource{}, "", errors.New("no")), Warn, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			d := cs.Discovery().(*fakediscovery.FakeDiscovery)
			d.Resources = tc.served
			if tc.err != nil {
				cs.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			}
			c := admissionPolicies(context.Background(), d)
			if c.Status != tc.want || !strings.Contains(c.Message, tc.in) {
				t.Fatalf("got %+v, want %s with %q", c, tc.want, tc.in)
			}
			if c.Status != Pass && c.Fix == "" {
				t.Errorf("a warning without a fix: %+v", c)
			}
		})
	}
}

// On a real client a version that is not served is a plain-text 404, and a
// 1.36+ cluster is answered by one request.
func TestAdmissionPoliciesOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	serve := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		body, ok := serve[r.URL.Path]
		if !ok {
			http.NotFound(w, r) // kube-apiserver's answer for an unserved version
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	serve["/apis/admissionregistration.k8s.io/v1"] = `{"kind":"APIResourceList","groupVersion":"admissionregistration.k8s.io/v1","resources":[{"name":"validatingadmissionpolicies","kind":"ValidatingAdmissionPolicy","verbs":["get"]}]}`
	if c := admissionPolicies(context.Background(), cs.Discovery()); c.Status != Warn || !strings.Contains(c.Message, "not served") {
		t.Fatalf("1.34 default: %+v", c)
	}
	if len(paths) != 3 {
		t.Errorf("1.34 default asked %v, want v1, v1beta1, v1alpha1", paths)
	}

	paths = nil
	serve["/apis/admissionregistration.k8s.io/v1"] = `{"kind":"APIResourceList","groupVersion":"admissionregistration.k8s.io/v1","resources":[{"name":"mutatingadmissionpolicies","kind":"MutatingAdmissionPolicy","verbs":["get"]}]}`
	if c := admissionPolicies(context.Background(), cs.Discovery()); c.Status != Pass || !strings.Contains(c.Message, "admissionregistration.k8s.io/v1:") {
		t.Fatalf("1.36+: %+v", c)
	}
	if len(paths) != 1 {
		t.Errorf("1.36+ asked %v, want one request", paths)
	}
}

const signerInUse = `# HELP apiserver_externaljwt_fetch_keys_request_total [ALPHA] Total attempts at syncing supported JWKs
# TYPE apiserver_externaljwt_fetch_keys_request_total counter
apiserver_externaljwt_fetch_keys_request_total{code="OK"} 4
# HELP apiserver_externaljwt_fetch_keys_success_timestamp [ALPHA] Unix Timestamp in seconds of the last successful FetchKeys request
# TYPE apiserver_externaljwt_fetch_keys_success_timestamp gauge
apiserver_externaljwt_fetch_keys_success_timestamp 1.7939808e+09
serviceaccount_legacy_tokens_total 0
`

func TestExternalSigner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		metrics string
		err     error
		want    Status
		inUse   bool
		in, fix string
	}{
		// Forbidden /metrics is not "not in use".
		{"metrics forbidden", "", apierrors.NewForbidden(schema.GroupResource{}, "", errors.New(`cannot get path "/metrics"`)), Warn, false, "external signer: unknown", "/metrics"},
		// The vectors are registered in every kube-apiserver; only their
		// HELP may show, never a sample, when no signer is configured.
		{"not in use", "# HELP apiserver_externaljwt_fetch_keys_request_total [ALPHA] Total attempts at syncing supported JWKs\nserviceaccount_legacy_tokens_total 3\napiserver_request_total{code=\"200\"} 9\n", nil, Pass, false, "external signer: not in use", ""},
		{"in use", signerInUse, nil, Pass, true, "external signer: in use (4 key fetches", ""},
		{"last success shown", signerInUse, nil, Pass, true, "the last successful at 2026-11-06T", ""},
		{"failed fetches", signerInUse + `apiserver_externaljwt_fetch_keys_request_total{code="Unavailable"} 2` + "\n", nil, Warn, true, "2 key fetches failed", "FetchKeys"},
		// A label value may hold a brace and a space.
		{"labels scanned, not split", `apiserver_externaljwt_fetch_keys_request_total{code="OK",note="a} b"} 5` + "\n", nil, Pass, true, "(5 key fetches", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, inUse := externalSigner([]byte(tc.metrics), tc.err)
			if c.Status != tc.want || inUse != tc.inUse || !strings.Contains(c.Message, tc.in) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("got %+v (in use %v), want %s, in use %v, message with %q, fix with %q", c, inUse, tc.want, tc.inUse, tc.in, tc.fix)
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct{ labels, key, want string }{
		{`code="OK"`, "code", "OK"},
		{`method="/v1.ExternalJWTSigner/FetchKeys",code="Unavailable"`, "code", "Unavailable"},
		{`a="x\"y",code="OK"`, "code", "OK"},
		{`a="x\"y"`, "a", `x"y`},
	} {
		if got, ok := labelValue(tc.labels, tc.key); !ok || got != tc.want {
			t.Errorf("labelValue(%q, %q) = %q, %v; want %q", tc.labels, tc.key, got, ok, tc.want)
		}
	}
	if _, ok := labelValue(`code="OK"`, "method"); ok {
		t.Error("found a label that is not there")
	}
}

// fakeToken is a compact JWS with the given header; the rest is never read.
func fakeToken(header string) []byte {
	return []byte(base64.RawURLEncoding.EncodeToString([]byte(header)) + ".cGF5bG9hZA.c2ln")
}

func tokenSecret(name string, token []byte, labels map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, Labels: labels},
		Type:       corev1.SecretTypeServiceAccountToken,
		Data:       map[string][]byte{corev1.ServiceAccountTokenKey: token},
	}
}

func TestLegacyTokenKeyIDs(t *testing.T) {
	cs := fake.NewClientset(
		tokenSecret("a", fakeToken(`{"alg":"RS256","kid":"kcm"}`), nil),
		tokenSecret("b", fakeToken(`{"alg":"RS256","kid":"kcm"}`), nil),
		// Rejected whatever the keys: not a token that depends on them.
		tokenSecret("invalidated", fakeToken(`{"alg":"RS256","kid":"old"}`), map[string]string{legacy.LabelInvalidSince: "2026-01-01"}),
		tokenSecret("unfilled", nil, nil),
		tokenSecret("nokid", fakeToken(`{"alg":"RS256"}`), nil),
	)
	got, err := legacyTokenKeyIDs(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.kids) != 1 || got.kids["kcm"] != 2 || got.noKid != 1 {
		t.Fatalf("got %+v, want kcm twice and one without kid", got)
	}
}

func TestSignerLegacyKey(t *testing.T) {
	jwks := &jwt.KeySet{Keys: []jwt.Key{{ID: "signer"}, {ID: "kcm"}}}
	signerOnly := &jwt.KeySet{Keys: []jwt.Key{{ID: "signer"}}}
	kcm := legacyKeyIDs{kids: map[string]int{"kcm": 3}}
	for _, tc := range []struct {
		name    string
		ids     legacyKeyIDs
		listErr error
		ks      *jwt.KeySet
		metrics string
		want    Status
		in, fix string
	}{
		{"no legacy tokens", legacyKeyIDs{kids: map[string]int{}}, nil, signerOnly, "", Pass, "no valid legacy token Secrets", ""},
		{"kcm key in the JWKS", kcm, nil, jwks, "", Pass, "kid kcm (3 Secrets): they verify", ""},
		{"kcm key not in the JWKS", kcm, nil, signerOnly, "", Warn, "the JWKS lacks kid kcm (3 Secrets)", "with kid kcm"},
		{"verified ones are counted", kcm, nil, signerOnly, "serviceaccount_legacy_tokens_total 7\n", Warn, "7 legacy tokens verified on this apiserver", "with kid kcm"},
		{"tokens without kid", legacyKeyIDs{kids: map[string]int{"kcm": 1}, noKid: 2}, nil, jwks, "", Warn, "2 legacy token Secrets carry no kid", "kube-controller-manager's public key"},
		{"JWKS unreadable", kcm, nil, nil, "", Warn, "the JWKS could not be read", "kube-controller-manager's public key"},
		{"Secrets unreadable", legacyKeyIDs{}, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("no")), jwks, "", Warn, "cannot list token Secrets", "kube-controller-manager's public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := signerLegacyKey(tc.ids, tc.listErr, tc.ks, []byte(tc.metrics))
			if c.Status != tc.want || !strings.Contains(c.Message, tc.in) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("got %+v, want %s, message with %q, fix with %q", c, tc.want, tc.in, tc.fix)
			}
		})
	}
}

func TestReleaseChecks(t *testing.T) {
	env := func(v string, ok bool) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k != "KUBECTL_PATH" {
				return "", false
			}
			return v, ok
		}
	}
	names := func(cs []Check) map[string]Check {
		m := map[string]Check{}
		for _, c := range cs {
			m[c.Name] = c
		}
		return m
	}
	cs := fake.NewClientset(tokenSecret("a", fakeToken(`{"alg":"RS256","kid":"kcm"}`), nil))
	cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{resources("admissionregistration.k8s.io/v1", mapResource)}
	ctx := context.Background()

	got := names(releaseChecks(ctx, cs, releaseInputs{GitVersion: "v1.37.2", Metrics: []byte("serviceaccount_legacy_tokens_total 0\n"), LookupEnv: env("/usr/local/bin/kubectl", true)}))
	if c := got["release"]; c.Status != Pass || !strings.Contains(c.Message, "kube-apiserver v1.37.2") || !strings.Contains(c.Message, "launched by kubectl /usr/local/bin/kubectl") {
		t.Errorf("release: %+v", c)
	}
	if c := got["admission-policies"]; c.Status != Pass {
		t.Errorf("admission-policies: %+v", c)
	}
	if c := got["external-signer"]; !strings.Contains(c.Message, "not in use") {
		t.Errorf("external-signer: %+v", c)
	}
	// The legacy key matters only under an external signer.
	if c, ok := got["external-signer-legacy-tokens"]; ok {
		t.Errorf("legacy key judged without a signer: %+v", c)
	}

	got = names(releaseChecks(ctx, cs, releaseInputs{GitVersion: "v1.37.2", Metrics: []byte(signerInUse), JWKS: &jwt.KeySet{Keys: []jwt.Key{{ID: "signer"}}}, LookupEnv: env("", false)}))
	if c := got["release"]; !strings.Contains(c.Message, "no KUBECTL_PATH: run directly or by a kubectl older than 1.37") {
		t.Errorf("release without KUBECTL_PATH: %+v", c)
	}
	if c := got["external-signer-legacy-tokens"]; c.Status != Warn || !strings.Contains(c.Message, "lacks kid kcm") {
		t.Errorf("external-signer-legacy-tokens: %+v", c)
	}
}

// Run reads /metrics once and adds the release checks after the others.
func TestRunHasTheReleaseChecks(t *testing.T) {
	var mu sync.Mutex
	metricsReads := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
		case "/metrics":
			mu.Lock()
			metricsReads++
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: User \"dev\" cannot get path \"/metrics\"","reason":"Forbidden","code":403}`))
		case "/apis/admissionregistration.k8s.io/v1":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"kind":"APIResourceList","groupVersion":"admissionregistration.k8s.io/v1","resources":[{"name":"mutatingadmissionpolicies","kind":"MutatingAdmissionPolicy","verbs":["get"]}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	checks := Run(context.Background(), cs, nil, Options{Namespace: "app", LookupEnv: func(string) (string, bool) { return "", false }})
	want := map[string]Status{"legacy-token-metrics": Skip, "release": Pass, "admission-policies": Pass, "external-signer": Warn}
	for _, c := range checks {
		if s, ok := want[c.Name]; ok {
			if c.Status != s {
				t.Errorf("%s is %s, want %s: %s", c.Name, c.Status, s, c.Message)
			}
			delete(want, c.Name)
		}
		// client-go's DoRaw calls a JSON 403 "unknown"; say the status.
		if c.Name == "external-signer" && !strings.HasSuffix(c.Message, "/metrics: HTTP 403 Forbidden") {
			t.Errorf("external-signer does not say why /metrics is unreadable: %s", c.Message)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing checks %v in %+v", want, checks)
	}
	if metricsReads != 1 {
		t.Errorf("/metrics read %d times, want once", metricsReads)
	}
}
