package tokens

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

func TestValidateDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{10 * time.Minute, ""},
		{48 * time.Hour, ""},
		{9*time.Minute + 59*time.Second, "10m minimum"},
		{-time.Hour, "negative"},
		{10*time.Minute + 500*time.Millisecond, "whole number of seconds"},
		{MaxDuration + time.Second, "2^32"},
	} {
		err := ValidateDuration(tc.d)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ValidateDuration(%s) = %v, want %q", tc.d, err, tc.want)
		}
	}
}

func TestValidateBoundObject(t *testing.T) {
	for _, tc := range []struct {
		b    *BoundObject
		want string
	}{
		{nil, ""},
		{&BoundObject{Kind: "Pod", Name: "p"}, ""},
		{&BoundObject{Kind: "Deployment", Name: "d"}, "not supported"},
		{&BoundObject{Kind: "Secret"}, "bound object name is needed"},
		{&BoundObject{Name: "p"}, "bound object kind is needed"},
	} {
		err := ValidateBoundObject(tc.b)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ValidateBoundObject(%+v) = %v, want %q", tc.b, err, tc.want)
		}
	}
}

// tokenReactor answers TokenRequests like the server: 404 for unknown
// ServiceAccounts, a token and an expiry otherwise.
func tokenReactor(known map[string]bool) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if ca.GetSubresource() != "token" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateActionImpl).Name
		key := a.GetNamespace() + "/" + name
		if !known[key] {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, name)
		}
		tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		tr.Status.Token = "tok-" + key
		tr.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Hour))
		return true, tr, nil
	}
}

func TestMintAllKeepsOrderReportsFailuresAndBoundsConcurrency(t *testing.T) {
	cs := fake.NewClientset()
	known := map[string]bool{}
	var targets []Target
	for i := 0; i < 40; i++ {
		tg := Target{Namespace: "ns", Name: fmt.Sprintf("sa-%02d", i)}
		targets = append(targets, tg)
		if i%10 != 3 {
			known[tg.String()] = true
		}
	}
	cs.PrependReactor("create", "serviceaccounts", tokenReactor(known))
	calls := 0
	res := MintAll(context.Background(), cs, targets, Request{}, 4, func(Result) { calls++ })
	if calls != len(targets) {
		t.Errorf("done called %d times, want %d", calls, len(targets))
	}
	failed := 0
	for i, r := range res {
		if r.Target != targets[i] {
			t.Fatalf("result %d is for %v, want %v", i, r.Target, targets[i])
		}
		if known[r.Target.String()] {
			if r.Err != nil || r.TokenRequest.Status.Token != "tok-"+r.Target.String() {
				t.Errorf("%v: err=%v", r.Target, r.Err)
			}
			if r.TokenRequest.Kind != "TokenRequest" || r.TokenRequest.Name != r.Target.Name {
				t.Errorf("%v: missing TypeMeta/name: %+v", r.Target, r.TokenRequest.TypeMeta)
			}
			continue
		}
		failed++
		if r.Err == nil || !strings.Contains(r.Err.Error(), "not found in namespace \"ns\"") {
			t.Errorf("%v: err = %v, want a not-found explanation", r.Target, r.Err)
		}
	}
	if failed != 4 {
		t.Errorf("failed = %d, want 4", failed)
	}
}

// The fake clientset serializes reactors, so concurrency is measured against
// an HTTP server with a real clientset.
func TestMintAllBoundsConcurrency(t *testing.T) {
	var inFlight, maxInFlight int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := atomic.AddInt32(&inFlight, 1)
		defer atomic.AddInt32(&inFlight, -1)
		for {
			m := atomic.LoadInt32(&maxInFlight)
			if n <= m || atomic.CompareAndSwapInt32(&maxInFlight, m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","status":{"token":"t","expirationTimestamp":"2030-01-01T00:00:00Z"}}`)
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for i := 0; i < 30; i++ {
		targets = append(targets, Target{Namespace: "ns", Name: fmt.Sprintf("sa-%d", i)})
	}
	for _, r := range MintAll(context.Background(), cs, targets, Request{}, 5, nil) {
		if r.Err != nil {
			t.Fatalf("%v: %v", r.Target, r.Err)
		}
	}
	if m := atomic.LoadInt32(&maxInFlight); m != 5 {
		t.Errorf("max requests in flight = %d, want 5 (the worker count)", m)
	}
}

func TestMintSendsRequestFields(t *testing.T) {
	cs := fake.NewClientset()
	var got *authenticationv1.TokenRequest
	cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		got = a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		out := got.DeepCopy()
		out.Status.Token = "x"
		return true, out, nil
	})
	_, err := Mint(context.Background(), cs, Target{"ns", "sa"}, Request{
		Audiences: []string{"vault"}, Duration: 24 * time.Hour,
		BoundObject: &BoundObject{Kind: "Secret", Name: "s", UID: "u-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Spec.ExpirationSeconds != 86400 || got.Spec.Audiences[0] != "vault" ||
		got.Spec.BoundObjectRef.Kind != "Secret" || got.Spec.BoundObjectRef.APIVersion != "v1" || got.Spec.BoundObjectRef.UID != "u-1" {
		t.Fatalf("request = %+v", got.Spec)
	}
}

func TestResolveBoundObject(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "pod-uid"}, Spec: corev1.PodSpec{ServiceAccountName: "web"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain", UID: "plain-uid"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}},
	)
	ctx := context.Background()
	b, err := ResolveBoundObject(ctx, cs, Target{"ns", "web"}, &BoundObject{Kind: "Pod", Name: "web"})
	if err != nil || b.UID != "pod-uid" {
		t.Fatalf("pod: %+v %v", b, err)
	}
	if _, err := ResolveBoundObject(ctx, cs, Target{"ns", "other"}, &BoundObject{Kind: "Pod", Name: "web"}); err == nil || !strings.Contains(err.Error(), `runs as serviceaccount "web", not "other"`) {
		t.Fatalf("other SA: %v", err)
	}
	if b, err := ResolveBoundObject(ctx, cs, Target{"ns", "default"}, &BoundObject{Kind: "Pod", Name: "plain"}); err != nil || b.UID != "plain-uid" {
		t.Fatalf("pod without serviceAccountName runs as default: %+v %v", b, err)
	}
	if _, err := ResolveBoundObject(ctx, cs, Target{"ns", "web"}, &BoundObject{Kind: "Pod", Name: "web", UID: "stale"}); !errors.Is(err, ErrBoundObjectRecreated) || !strings.Contains(err.Error(), "re-created") || strings.Contains(err.Error(), "--") {
		t.Fatalf("stale uid: %v", err)
	}
	if b, err := ResolveBoundObject(ctx, cs, Target{"ns", "web"}, &BoundObject{Kind: "Node", Name: "n1"}); err != nil || b.UID != "node-uid" {
		t.Fatalf("node: %+v %v", b, err)
	}
	if _, err := ResolveBoundObject(ctx, cs, Target{"ns", "web"}, &BoundObject{Kind: "Secret", Name: "nope"}); !errors.Is(err, ErrBoundObjectNotFound) || err.Error() != `secret "nope" not found in namespace "ns"` {
		t.Fatalf("missing secret: %v", err)
	}
}

func TestExplainServerErrors(t *testing.T) {
	tg := Target{"ns", "sa"}
	gr := schema.GroupResource{Resource: "serviceaccounts"}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", apierrors.NewForbidden(gr, "sa", errors.New(`User "bob" cannot create resource "serviceaccounts/token"`)), `verb "create" on resource "serviceaccounts/token"`},
		{"node gate", apierrors.NewBadRequest(`cannot bind token to a Node object as the "ServiceAccountTokenNodeBinding" feature-gate is disabled`), "feature gate ServiceAccountTokenNodeBinding"},
		{"pod of other SA", apierrors.NewBadRequest(`cannot bind token for serviceaccount "sa" to pod running with different serviceaccount name.`), "runs as another serviceaccount"},
		{"duration", apierrors.NewInvalid(schema.GroupKind{Group: "authentication.k8s.io", Kind: "TokenRequest"}, "", nil), ""},
		{"missing SA", apierrors.NewNotFound(gr, "sa"), "kubectl get serviceaccounts -n ns"},
		{"missing pod", apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web"), `bound pod "web" not found`},
	} {
		got := Explain(tc.err, tg, Request{BoundObject: &BoundObject{Kind: "Pod", Name: "web"}}).Error()
		if tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q does not contain %q", tc.name, got, tc.want)
		}
		if strings.Contains(got, "\n") {
			t.Errorf("%s: not one line: %q", tc.name, got)
		}
	}
	// The server's real duration error, as kube-apiserver words it.
	inv := apierrors.NewInvalid(schema.GroupKind{Group: "authentication.k8s.io", Kind: "TokenRequest"}, "",
		fieldErr{}.list("spec.expirationSeconds", "may not specify a duration less than 10 minutes"))
	if err := Explain(inv, tg, Request{Duration: time.Minute}); !strings.Contains(err.Error(), "rejected the duration 1m0s") || !errors.Is(err, ErrDurationRejected) ||
		strings.Contains(err.Error(), "--") {
		t.Errorf("duration: %q: want the problem named (ErrDurationRejected), no flag", err)
	}
	// A conflict is the bound object's uid going stale on the server.
	if err := Explain(apierrors.NewConflict(gr, "sa", errors.New("uid mismatch")), tg, Request{}); !errors.Is(err, ErrBoundObjectRecreated) || strings.Contains(err.Error(), "--") {
		t.Errorf("conflict: %q: want ErrBoundObjectRecreated, no flag", err)
	}
}

type fieldErr struct{}

func (fieldErr) list(path, msg string) field.ErrorList {
	return field.ErrorList{field.Invalid(field.NewPath(path), 300, msg)}
}

// TokenRequest stores nothing, so transient failures are retried; answers
// such as 404 are final and cost one request.
func TestMintRetriesTransientFailuresOnly(t *testing.T) {
	saved := Retry
	Retry.Initial, Retry.Max = time.Millisecond, 2*time.Millisecond
	t.Cleanup(func() { Retry = saved })

	cs := fake.NewClientset()
	known := map[string]bool{"ns/flaky": true, "ns/down": true}
	ok := tokenReactor(known)
	tries := map[string]int{}
	cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.CreateActionImpl).Name
		tries[name]++
		switch {
		case name == "flaky" && tries[name] == 1:
			return true, nil, apierrors.NewTooManyRequests("slow down", 0)
		case name == "flaky" && tries[name] == 2:
			return true, nil, fmt.Errorf("post: %w", syscall.ECONNRESET)
		case name == "down":
			return true, nil, apierrors.NewServiceUnavailable("later")
		}
		return ok(a)
	})
	if _, err := Mint(context.Background(), cs, Target{"ns", "flaky"}, Request{}); err != nil || tries["flaky"] != 3 {
		t.Errorf("flaky: err=%v after %d tries, want success on the 3rd", err, tries["flaky"])
	}
	_, err := Mint(context.Background(), cs, Target{"ns", "down"}, Request{})
	if err == nil || tries["down"] != Retry.Attempts || !strings.Contains(err.Error(), fmt.Sprintf("gave up after %d attempts", Retry.Attempts)) {
		t.Errorf("down: err=%v after %d tries, want giving up after %d", err, tries["down"], Retry.Attempts)
	}
	if _, err := Mint(context.Background(), cs, Target{"ns", "ghost"}, Request{}); err == nil || tries["ghost"] != 1 {
		t.Errorf("ghost: err=%v after %d tries, want 1 try and not found", err, tries["ghost"])
	}
}
