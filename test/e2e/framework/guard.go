package framework

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// This file holds what the suites of the guard (the admission policy and
// guard watch), the marks migrate writes, and the guard benchmarks do to a
// legacy token Secret: mark it as migrate --apply does, and present its
// token as the workload that holds it would.

// Marks are labels and annotations to merge-patch onto a Secret; a nil map
// writes nothing, a nil value removes the key.
type Marks struct{ Labels, Annotations map[string]any }

// CleanUpMarks are what migrate --apply writes on an invalidation for
// clean-up today, guarded legacy.DefaultGuardDays, of a Secret never used
// before (pkg/legacy invalidate.go, ApplyOptions.invalidation). Each call
// returns fresh maps, for a test to change.
func CleanUpMarks() Marks {
	return Marks{
		Labels: map[string]any{legacy.LabelInvalidSince: Day(0), legacy.LabelGuardUntil: Day(legacy.DefaultGuardDays)},
		Annotations: map[string]any{
			legacy.AnnotationInvalidatedOn:  Day(0),
			legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp,
			legacy.AnnotationLastUsedBefore: legacy.LastUsedNone,
		},
	}
}

// AuthenticatorDelay is how long MarkGuarded waits after its patch:
// kube-apiserver's token authenticator reads Secrets through an informer,
// which must see the marks before a presented token is judged by them.
const AuthenticatorDelay = 2 * time.Second

// MarkGuarded writes m on the Secret as the administrator, waits
// AuthenticatorDelay, and returns the Secret as patched.
func (c *Cluster) MarkGuarded(t testing.TB, s *corev1.Secret, m Marks) *corev1.Secret {
	t.Helper()
	out := c.WriteMarks(t, s.Namespace, s.Name, m)
	time.Sleep(AuthenticatorDelay)
	return out
}

// WriteMarks is MarkGuarded without the wait, for a caller that presents
// no token right after (a benchmark that marks hundreds of Secrets).
func (c *Cluster) WriteMarks(t testing.TB, ns, name string, m Marks) *corev1.Secret {
	t.Helper()
	meta := map[string]any{}
	if m.Labels != nil {
		meta["labels"] = m.Labels
	}
	if m.Annotations != nil {
		meta["annotations"] = m.Annotations
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	out, err := c.Client.CoreV1().Secrets(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TokenClient is a client of its own that presents the Secret's legacy
// token with user agent agent (client-go's own when empty), as a workload would: nothing of the
// plugin, no admin credentials.
func (c *Cluster) TokenClient(t testing.TB, s *corev1.Secret, agent string) kubernetes.Interface {
	t.Helper()
	cfg := rest.AnonymousClientConfig(c.RESTConfig)
	cfg.BearerToken = string(s.Data[corev1.ServiceAccountTokenKey])
	if agent != "" {
		cfg.UserAgent = agent
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// PresentToken sends one request with the Secret's token through
// TokenClient (Present) and returns the HTTP status: 201 accepted, 401
// refused.
func (c *Cluster) PresentToken(t testing.TB, s *corev1.Secret, agent string) int {
	t.Helper()
	return Present(t, c.TokenClient(t, s, agent))
}

// Present sends one request (a SelfSubjectReview, which every
// authenticated user may make) with client, made by TokenClient, and
// returns the HTTP status: 201 accepted, 401 refused. An error with no
// HTTP status stops the test. It is PresentToken for a caller that times
// the request alone, without making the client.
func Present(t testing.TB, client kubernetes.Interface) int {
	t.Helper()
	_, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	var st apierrors.APIStatus
	switch {
	case err == nil:
		return http.StatusCreated
	case errors.As(err, &st):
		return int(st.Status().Code)
	}
	t.Fatalf("presenting a token: no answer: %v", err)
	return 0
}

// GetSecret reads a Secret as the administrator; a missing one stops the
// test.
func (c *Cluster) GetSecret(t testing.TB, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// CleanerInvalidatesOld creates a listed legacy token Secret name of
// ServiceAccount app in ns, three years old and never used, runs
// kube-controller-manager's cleaner once over it, and checks that the
// cleaner invalidated it with its label alone (none of migrate's marks),
// as the guard suites start from. It returns the Secret as created, its
// token filled.
func (c *Cluster) CleanerInvalidatesOld(t testing.TB, ns, name string) *corev1.Secret {
	t.Helper()
	s := c.CreateLegacySecret(t, ns, "app", name, true)
	c.BackdateSecret(t, ns, name, DaysAgo(3*365))
	run := c.RunLegacyTokenCleanerOnce(t, 365*24*time.Hour)
	found := false
	for _, k := range run.Invalidated {
		found = found || k == ns+"/"+name
	}
	if !found {
		t.Fatalf("the cleaner invalidated %v, not %s/%s (log %s)", run.Invalidated, ns, name, run.Log)
	}
	if cur := c.GetSecret(t, ns, name); cur.Labels[legacy.LabelGuardUntil] != "" || cur.Annotations[legacy.AnnotationInvalidatedFor] != "" {
		t.Fatalf("the cleaner wrote more than invalid-since: %v %v", cur.Labels, cur.Annotations)
	}
	return s
}
