package kubeapi

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// EachPage follows continue tokens to the end, repeats a page whose LIST
// failed for a transient reason, and stops at each's error.
func TestEachPage(t *testing.T) {
	pages := map[string]*corev1.SecretList{
		"":   {ListMeta: metav1.ListMeta{Continue: "p2"}, Items: []corev1.Secret{{}, {}}},
		"p2": {ListMeta: metav1.ListMeta{Continue: "p3"}, Items: []corev1.Secret{{}}},
		"p3": {Items: []corev1.Secret{{}}},
	}
	var calls, failed int
	list := func(_ context.Context, lo metav1.ListOptions) (*corev1.SecretList, error) {
		calls++
		if lo.Continue == "p2" && failed == 0 {
			failed++
			return nil, apierrors.NewServiceUnavailable("busy")
		}
		if lo.Limit != 2 {
			t.Errorf("limit %d, want the caller's 2", lo.Limit)
		}
		return pages[lo.Continue], nil
	}
	n := 0
	if err := EachPage(context.Background(), metav1.ListOptions{Limit: 2}, list, func(l *corev1.SecretList) error {
		n += len(l.Items)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 4 || calls != 4 {
		t.Errorf("%d items in %d LISTs, want 4 in 4 (one repeated)", n, calls)
	}
	stop := errors.New("stop")
	if err := EachPage(context.Background(), metav1.ListOptions{Limit: 2}, list, func(*corev1.SecretList) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("each's error %v, want it back", err)
	}
}

// Parallel runs every index once, on no more goroutines than asked.
func TestParallel(t *testing.T) {
	var running, most, done atomic.Int32
	seen := make([]atomic.Int32, 50)
	Parallel(50, 3, func(i int) {
		if r := running.Add(1); r > most.Load() {
			most.Store(r)
		}
		time.Sleep(time.Millisecond)
		seen[i].Add(1)
		done.Add(1)
		running.Add(-1)
	})
	if done.Load() != 50 || most.Load() > 3 {
		t.Errorf("%d done, at most %d at once; want 50, ≤ 3", done.Load(), most.Load())
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Errorf("index %d ran %d times", i, seen[i].Load())
		}
	}
}

// A forbidden LIST is one line naming the verb, resource and namespace,
// and still the apiserver's Forbidden; other errors keep their cause.
func TestDescribeAPIError(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("RBAC: access denied"))
	err := DescribeAPIError(forbidden, "list", "secrets", "")
	if err.Error() != `forbidden: you may not list secrets across all namespaces; ask for RBAC that allows "list" on "secrets"` {
		t.Errorf("message %q", err)
	}
	if !apierrors.IsForbidden(err) {
		t.Error("no longer a Forbidden to apierrors.IsForbidden")
	}
	other := errors.New("connection refused")
	if err := DescribeAPIError(other, "get", "pods", "app"); !errors.Is(err, other) || !strings.Contains(err.Error(), "get pods in namespace app") {
		t.Errorf("%v", err)
	}
}

// CheckAccess names every missing permission in one line, and none when
// all are allowed; the resource's group goes to the review.
func TestCheckAccess(t *testing.T) {
	cs := fake.NewSimpleClientset()
	var groups []string
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		groups = append(groups, ra.Group)
		r.Status.Allowed = ra.Verb == "get"
		return true, r, nil
	})
	perms := []Permission{{Verb: "get", Resource: "deployments.apps"}, {Verb: "patch", Resource: "deployments.apps"}, {Verb: "delete", Resource: "secrets"}}
	err := CheckAccess(context.Background(), cs, "app", perms)
	if err == nil || err.Error() != "forbidden: you may not patch deployments.apps, delete secrets in namespace app; ask for RBAC that allows it, nothing was changed" {
		t.Errorf("%v", err)
	}
	if strings.Join(groups, ",") != "apps,apps," {
		t.Errorf("groups sent %q", groups)
	}
	if err := CheckAccess(context.Background(), cs, "", perms[:1]); err != nil {
		t.Errorf("all allowed: %v", err)
	}
}

// The dry-run strategy keeps kubectl's names in printed documents and
// sends dryRun=All only on a server dry run.
func TestDryRun(t *testing.T) {
	for s, want := range map[cmdutil.DryRunStrategy]string{cmdutil.DryRunNone: "none", cmdutil.DryRunClient: "client", cmdutil.DryRunServer: "server"} {
		if got := DryRunName(s); got != want {
			t.Errorf("DryRunName(%d) = %q, want %q", s, got, want)
		}
	}
	if DryRunAll(cmdutil.DryRunNone) != nil || DryRunAll(cmdutil.DryRunClient) != nil {
		t.Error("dryRun sent without a server dry run")
	}
	if d := DryRunAll(cmdutil.DryRunServer); len(d) != 1 || d[0] != metav1.DryRunAll {
		t.Errorf("server dry run sends %v", d)
	}
}

// Sleep ends early, false, when its context does.
func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("a finished sleep says interrupted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Error("a cancelled context did not end the sleep")
	}
}

// expiredContinue is what kube-apiserver answers to a continue token whose
// revision etcd compacted (k8s.io/apiserver pkg/storage/etcd3/errors.go,
// handleCompactedErrorForPaging): 410 with a new token, or without one.
func expiredContinue(token string) error {
	err := apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result.")
	err.ErrStatus.ListMeta.Continue = token
	return err
}

// TestEachPageGoesOnAfterAnExpiredContinue: a 410 on page 2 is followed by
// the token it carries, without a resourceVersion, and without listing
// from the start again: every object is handed out once. A 410 without a
// token, or on the first page, is an error.
func TestEachPageGoesOnAfterAnExpiredContinue(t *testing.T) {
	var asked []string
	list := func(_ context.Context, lo metav1.ListOptions) (*corev1.SecretList, error) {
		asked = append(asked, lo.Continue+"@"+lo.ResourceVersion)
		switch lo.Continue {
		case "":
			return &corev1.SecretList{ListMeta: metav1.ListMeta{Continue: "p2"}, Items: []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}}, nil
		case "p2":
			return nil, expiredContinue("p2-latest")
		case "p2-latest":
			return &corev1.SecretList{Items: []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "b"}}}}, nil
		}
		return nil, errors.New("unexpected token " + lo.Continue)
	}
	var names []string
	err := EachPage(context.Background(), metav1.ListOptions{Limit: 1, ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}, list, func(l *corev1.SecretList) error {
		for _, s := range l.Items {
			names = append(names, s.Name)
		}
		return nil
	})
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("names %v, err %v", names, err)
	}
	if strings.Join(asked, " ") != "@0 p2@ p2-latest@" {
		t.Errorf("asked %v", asked)
	}
	for _, first := range []bool{true, false} {
		list := func(_ context.Context, lo metav1.ListOptions) (*corev1.SecretList, error) {
			if lo.Continue == "" && !first {
				return &corev1.SecretList{ListMeta: metav1.ListMeta{Continue: "p2"}}, nil
			}
			if first {
				return nil, expiredContinue("tok")
			}
			return nil, expiredContinue("")
		}
		if err := EachPage(context.Background(), metav1.ListOptions{}, list, func(*corev1.SecretList) error { return nil }); !apierrors.IsResourceExpired(err) {
			t.Errorf("first page %v: err %v, want the 410", first, err)
		}
	}
}
