package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// kubeconfigFor writes a kubeconfig whose only context points at server.
func kubeconfigFor(t *testing.T, server string, insecure bool) string {
	t.Helper()
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + server + "\n"
	if insecure {
		kc += "    insecure-skip-tls-verify: true\n"
	}
	kc += "contexts:\n- name: c\n  context: {cluster: c, user: u, namespace: default}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A cluster that never answers has nothing created: one line, exit 2.
func TestCreateUnreachableClusterExits2(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler()) // its CA is trusted nowhere
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
	untrusted.StartTLS()
	defer untrusted.Close()
	plain := httptest.NewServer(http.NotFoundHandler()) // answers TLS with plain HTTP
	defer plain.Close()

	for name, server := range map[string]string{
		"connection refused": closed,
		"unknown CA":         untrusted.URL,
		"not TLS":            strings.Replace(plain.URL, "http://", "https://", 1),
	} {
		for _, args := range [][]string{{"create", "a"}, {"create", "a", "b", "c"}, {"create", "-l", "app=x"}} {
			_, errOut, code := run(t, cmdRun{}, "", append([]string{"--kubeconfig", kubeconfigFor(t, server, false)}, args...)...)
			if code != ExitUsage {
				t.Errorf("%s, %v: exit %d, want %d\n%s", name, args, code, ExitUsage, errOut)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "error: cannot reach the cluster at "+server+": ") ||
				!strings.Contains(errOut, "no token was created") {
				t.Errorf("%s, %v: want one line naming the server:\n%s", name, args, errOut)
			}
		}
	}
}

// A cluster that answers keeps exit 1 for a batch where one item failed.
func TestCreateMissingServiceAccountExits1(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/default/serviceaccounts/ok/token" {
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
				"metadata": map[string]any{"name": "ok", "namespace": "default"},
				"status":   map[string]any{"token": "header.payload.signature", "expirationTimestamp": "2030-01-01T00:00:00Z"},
			})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
			"message": `serviceaccounts "missing" not found`,
			"details": map[string]any{"name": "missing", "kind": "serviceaccounts"},
		})
	}))
	defer srv.Close()
	_, errOut, code := run(t, cmdRun{}, "", "--kubeconfig", kubeconfigFor(t, srv.URL, true), "create", "ok", "missing")
	if code != ExitFailed || !strings.Contains(errOut, `serviceaccount "missing" not found`) || !strings.Contains(errOut, "1 of 2 tokens could not be created") {
		t.Fatalf("exit %d, want %d:\n%s", code, ExitFailed, errOut)
	}
	_, errOut, code = run(t, cmdRun{}, "", "--kubeconfig", kubeconfigFor(t, srv.URL, true), "create", "missing")
	if code != ExitFailed {
		t.Fatalf("one missing ServiceAccount: exit %d, want %d:\n%s", code, ExitFailed, errOut)
	}
}

// The other commands that only read before they change anything say the same
// with exit 2 when the cluster does not answer.
func TestUnreachableClusterExits2(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kc := kubeconfigFor(t, "https://"+l.Addr().String(), false)
	l.Close()
	for _, args := range [][]string{
		{"rotate", "--issuer", "https://oidc.example.com/a", "--dry-run"},
		{"rotate", "--hosted-cluster", "prod", "--generate", "rsa2048", "--dry-run"},
		{"doctor"},
		{"verify", "--token-review", "a.b.c"},
		{"migrate"},
		{"wait", "--timeout", "5s"},
		{"oidc", "export", "--out-dir", t.TempDir()},
	} {
		out, errOut, code := run(t, cmdRun{}, "", append([]string{"--kubeconfig", kc}, args...)...)
		if code != ExitUsage || !strings.Contains(out+errOut, "connection refused") {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, ExitUsage, out, errOut)
		}
	}
}

// pkg/tokens names the problem; create's Run adds the flag that changes
// it, so the lines read as before the domain package stopped naming flags.
func TestCreateAddsFlagAdviceToTokenProblems(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "pod-uid"}, Spec: corev1.PodSpec{ServiceAccountName: "web"}}
	forbid := fake.NewClientset()
	forbid.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "s", errors.New("no"))
	})
	short := fake.NewClientset()
	short.PrependReactor("create", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "authentication.k8s.io", Kind: "TokenRequest"}, "",
			field.ErrorList{field.Invalid(field.NewPath("spec", "expirationSeconds"), 60, "may not specify a duration less than 10 minutes")})
	})
	for _, tc := range []struct {
		client          kubernetes.Interface
		kind, name, uid string
		want            string
	}{
		{fake.NewClientset(pod), "Pod", "web", "stale", `pod "web" has uid pod-uid, not stale: it was deleted and re-created; drop --bound-object-uid to bind to the current one`},
		{fake.NewClientset(), "Secret", "nope", "", `secret "nope" not found in namespace "ns": check --bound-object-name`},
		{forbid, "Secret", "s", "", `not allowed to get secrets in namespace "ns" to look up the uid of "s" (RBAC verb "get" on resource "secrets"); pass --bound-object-uid or ask for that permission`},
		{short, "", "", "", "; choose another --duration"},
	} {
		streams, _, _, errOut := genericiooptions.NewTestIOStreams()
		o := NewCreateOptions(streams)
		o.Client, o.Names, o.Namespace, o.Duration = tc.client, []string{"web"}, "ns", time.Minute
		o.BoundObjectKind, o.BoundObjectName, o.BoundObjectUID = tc.kind, tc.name, tc.uid
		err := o.Run(context.Background())
		if !strings.Contains(errOut.String(), tc.want+"\n") || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%s %s: stderr %q, want one line ending %q", tc.kind, tc.name, errOut, tc.want)
		}
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitFailed {
			t.Errorf("%s %s: %v, want exit 1", tc.kind, tc.name, err)
		}
	}
}
