package paging

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// continueToken is what kube-apiserver's continue parameter holds
// (k8s.io/apiserver pkg/storage/continue.go, EncodeContinue): the
// revision of the list and the key it goes on from.
type continueToken struct {
	RV    int64  `json:"rv"`
	Start string `json:"start"`
}

func decodeContinue(t *testing.T, s string) continueToken {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("continue %q: %v", s, err)
	}
	var c continueToken
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("continue %q: %v", s, err)
	}
	return c
}

// TestAuditGoesOnAfterItsContinueExpires: the audit lists the Secrets in
// pages of 4; before its first continued page is forwarded, a Secret is
// created and etcd is compacted, so the page's revision is gone and
// kube-apiserver answers 410 Gone with an inconsistent continue token
// (k8s.io/apiserver pkg/storage/etcd3 errors.go,
// handleCompactedErrorForPaging: the same key at revision -1, "the
// latest"). The audit goes on with that token: the next request names
// the same key at revision -1, and every Secret is judged once. Without
// the rule (kubeapi.EachPage) the audit fails with the 410.
func TestAuditGoesOnAfterItsContinueExpires(t *testing.T) {
	ns := cluster.CreateNamespace(t, "paging")
	if _, err := cluster.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "sa"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := 0; i < n; i++ {
		if _, err := cluster.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tok-%02d", i), Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"}},
			Type:       corev1.SecretTypeServiceAccountToken,
			Data:       map[string][]byte{"token": []byte("x"), "ca.crt": []byte("x"), "namespace": []byte(ns)},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu     sync.Mutex
		tokens []continueToken
		once   sync.Once
	)
	p, err := faultproxy.Start(cluster, faultproxy.Config{Seed: 1, Script: func(r *http.Request) faultproxy.Fault {
		c := r.URL.Query().Get("continue")
		if r.Method != http.MethodGet || c == "" || r.URL.Query().Get("fieldSelector") != "type=kubernetes.io/service-account-token" {
			return faultproxy.NoFault
		}
		tok := decodeContinue(t, c)
		mu.Lock()
		tokens = append(tokens, tok)
		mu.Unlock()
		once.Do(func() {
			// The list's revision is compacted away before its next page.
			if _, err := cluster.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "zz-during"}}, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
			if rev := cluster.CompactEtcd(t); rev <= tok.RV {
				t.Errorf("compacted at %d, not past the list's revision %d", rev, tok.RV)
			}
		})
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	r := framework.Run(&bytes.Buffer{}, p.Kubeconfig, "migrate", "-n", ns, "--chunk-size", "1", "-o", "json").MustCode(t, 0)
	var doc struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, r.Stdout)
	}
	seen := map[string]int{}
	for _, it := range doc.Items {
		seen[it.Name]++
	}
	for i := 0; i < n; i++ {
		if name := fmt.Sprintf("tok-%02d", i); seen[name] != 1 {
			t.Errorf("%s judged %d times, want once", name, seen[name])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tokens) < 2 {
		t.Fatalf("%d continued pages: want the expired one and the one after", len(tokens))
	}
	// The 410's token goes on from the same key, at the latest revision.
	if first, next := tokens[0], tokens[1]; next.Start != first.Start || next.RV != -1 {
		t.Errorf("after the expired page (%+v) the audit sent %+v: want the same key at revision -1 (the 410's inconsistent continue token)", first, next)
	}
}
