// Package migrate tests `migrate` and `restore` against a real
// kube-apiserver, etcd and kube-controller-manager: legacy Secrets are
// filled by the real token controller and accepted or rejected by the real
// authenticator.
package migrate

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	// The token controller fills hundreds of Secrets here; its default
	// client rate (20/s) would make that the slowest part of the suite.
	// JSON storage lets tests backdate Secrets through etcd; the audit log
	// is read back by --audit-log; use is tracked since trackedDays ago, as
	// on a cluster upgraded to 1.28 long since.
	framework.Main(m, framework.Options{KCMArgs: []string{"--kube-api-qps=500", "--kube-api-burst=1000"}, JSONStorage: true, Audit: true,
		TrackingSince: framework.DaysAgo(trackedDays)},
		func(c *framework.Cluster) { cluster = c })
}

// run executes `kubectl bound-token ARGS` in-process against the cluster.
func run(t *testing.T, args ...string) framework.Result {
	t.Helper()
	return runAs(t, cluster.Kubeconfig, args...)
}

func runAs(t *testing.T, kubeconfig string, args ...string) framework.Result {
	t.Helper()
	return framework.Run(&bytes.Buffer{}, kubeconfig, args...)
}

// oneLineError asserts that stderr is exactly one "error: ..." line that
// contains want.
func oneLineError(t *testing.T, r framework.Result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "error: ") || !strings.Contains(last, want) {
		t.Fatalf("stderr should end in one error line containing %q:\n%s", want, r.Stderr)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "backing up") || strings.HasPrefix(l, "summary") {
			t.Fatalf("refused run still started work:\n%s", r.Stderr)
		}
	}
}

var ctx = context.Background()

// legacySecret creates a legacy token Secret for sa (listed in its .secrets
// when listed is set, as auto-generated ones were), waits for the token
// controller to fill it, makes it three years old, and returns it.
func legacySecret(t *testing.T, ns, sa, name string, listed bool) *corev1.Secret {
	t.Helper()
	freshSecret(t, ns, sa, name, listed)
	cluster.BackdateSecret(t, ns, name, framework.DaysAgo(3*365))
	s, _ := getSecret(t, ns, name)
	return s
}

// invalidLongAgo labels every legacy Secret of ns invalid since 200 days
// ago, so that its verdict is delete (the mode delete tests act on).
func invalidLongAgo(t *testing.T, ns string) {
	t.Helper()
	l, err := cluster.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, legacy.LabelInvalidSince, framework.DaysAgo(200).Format("2006-01-02"))
	for _, s := range l.Items {
		if s.Type != corev1.SecretTypeServiceAccountToken {
			continue
		}
		if _, err := cluster.Client.CoreV1().Secrets(ns).Patch(ctx, s.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// freshSecret is legacySecret created now.
func freshSecret(t *testing.T, ns, sa, name string, listed bool) *corev1.Secret {
	t.Helper()
	return cluster.CreateLegacySecret(t, ns, sa, name, listed)
}

// authenticates asks the apiserver who the Secret's token is.
func authenticates(t *testing.T, s *corev1.Secret) (bool, error) {
	_, err := cluster.TokenClient(t, s, "").AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if apierrors.IsUnauthorized(err) {
		return false, nil
	}
	return err == nil, err
}

// waitAuth polls across the apiserver's ~10 s authentication cache.
func waitAuth(t *testing.T, s *corev1.Secret, want bool) {
	t.Helper()
	cluster.Eventually(t, 20*time.Second, func() (bool, error) {
		ok, err := authenticates(t, s)
		if err != nil {
			return false, err
		}
		if ok != want {
			return false, fmt.Errorf("token of %s/%s authenticates=%v", s.Namespace, s.Name, ok)
		}
		return true, nil
	})
}

func getSecret(t *testing.T, ns, name string) (*corev1.Secret, bool) {
	t.Helper()
	s, err := cluster.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}

func saLists(t *testing.T, ns, sa, secret string) bool {
	t.Helper()
	s, err := cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Secrets {
		if r.Name == secret {
			return true
		}
	}
	return false
}

// backupDir returns a fresh path for a backup inside a 0700 temp folder.
func backupDir(t *testing.T) string {
	return filepath.Join(t.TempDir(), "backup")
}

// createMany makes n legacy Secrets spread over SAs (listed), concurrently,
// and waits until the controller filled every one. They are new: their
// verdict is unknown ("too new to call unused"), so the tests of apply's
// mechanics that invalidate them name it with --include-unknown.
func createMany(t *testing.T, ns string, n, perSA int) {
	t.Helper()
	c := cluster.Client.CoreV1()
	for i := 0; i < (n+perSA-1)/perSA; i++ {
		cluster.CreateServiceAccount(t, ns, fmt.Sprintf("sa-%d", i))
	}
	cluster.CreateSecrets(t, ns, n, func(i int) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tok-%03d", i), Annotations: map[string]string{corev1.ServiceAccountNameKey: fmt.Sprintf("sa-%d", i/perSA)}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}
	})
	for i := 0; i < (n+perSA-1)/perSA; i++ {
		var refs []string
		for j := i * perSA; j < min(n, (i+1)*perSA); j++ {
			refs = append(refs, fmt.Sprintf(`{"name":"tok-%03d"}`, j))
		}
		patch := `{"secrets":[` + strings.Join(refs, ",") + `]}`
		if _, err := c.ServiceAccounts(ns).Patch(ctx, fmt.Sprintf("sa-%d", i), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cluster.Eventually(t, 60*time.Second, func() (bool, error) {
		l, err := c.Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		filled := 0
		for _, s := range l.Items {
			if s.Type == corev1.SecretTypeServiceAccountToken && len(s.Data[corev1.ServiceAccountTokenKey]) > 0 {
				filled++
			}
		}
		return filled == n, fmt.Errorf("%d of %d filled", filled, n)
	})
}
