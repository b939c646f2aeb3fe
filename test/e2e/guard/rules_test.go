package guard

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestEveryRuleIsNeeded removes each matchCondition from the installed
// policy in turn, on the real apiserver, and shows that the write of the
// case that names it is then restored: no rule is decoration, and no
// case of TestStaysInvalid or TestOtherWritesDoNotRestore passes for a
// reason other than its rule. Each write is sent with dryRun=All, as
// kube-apiserver's identity where the case is its last-used patch, so
// the Secrets stay as they are; they are Opaque, with the marks (the
// policy does not read the type). The full policy is put back at the end
// through guard install, which must update the altered policy.
func TestEveryRuleIsNeeded(t *testing.T) {
	installed(t)
	ns := cluster.CreateNamespace(t, "rules")
	as, err := guard.AsAPIServer(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	today := framework.Day(0)
	lastUsedWrite := func(c kubernetes.Interface) func(s *corev1.Secret) (*corev1.Secret, error) {
		return func(s *corev1.Secret) (*corev1.Secret, error) {
			// kube-apiserver's own patch (legacy.go, patchSecretWithLastUsedDate).
			body, _ := json.Marshal(applycorev1.Secret(s.Name, s.Namespace).WithUID(s.UID).WithLabels(map[string]string{legacy.LabelLastUsed: today}))
			return c.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, body, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		}
	}
	byAPIServer, byAdmin := lastUsedWrite(as), lastUsedWrite(cluster.Client)
	otherLabel := func(s *corev1.Secret) (*corev1.Secret, error) {
		return as.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"example.com/team":"payments"}}}`),
			metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	}
	cases := []struct {
		rule  string
		edit  func(m *framework.Marks)
		write func(*corev1.Secret) (*corev1.Secret, error)
	}{
		{"written-by-kube-apiserver", func(*framework.Marks) {}, byAdmin},
		{"invalid", func(m *framework.Marks) { m.Labels[legacy.LabelInvalidSince] = "" }, byAPIServer},
		{"invalidated-for-clean-up", func(m *framework.Marks) {
			m.Annotations[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation
		}, byAPIServer},
		{"not-restored-before", func(m *framework.Marks) { m.Annotations[legacy.AnnotationRestoredOnUse] = framework.Day(-3) }, byAPIServer},
		{"guard-day", func(m *framework.Marks) { m.Labels[legacy.LabelGuardUntil] = "forever" }, byAPIServer},
		{"last-used-recorded", func(m *framework.Marks) { delete(m.Annotations, legacy.AnnotationLastUsedBefore) }, byAPIServer},
		{"last-used-written", func(m *framework.Marks) { m.Labels[legacy.LabelLastUsed] = framework.Day(-2) }, otherLabel},
		{"presented-since-invalidation", func(m *framework.Marks) { m.Annotations[legacy.AnnotationLastUsedBefore] = today }, byAPIServer},
		{"within-guard-day", func(m *framework.Marks) { m.Labels[legacy.LabelGuardUntil] = framework.Day(-1) }, byAPIServer},
	}
	if len(cases) != len(guard.Conditions()) {
		t.Fatalf("%d cases for %d matchConditions: every rule needs its case", len(cases), len(guard.Conditions()))
	}
	restored := func(s *corev1.Secret) bool {
		_, ok := s.Annotations[legacy.AnnotationRestoredOnUse]
		return ok && s.Annotations[legacy.AnnotationRestoredBy] == legacy.RestoredByPolicy
	}
	secrets := make([]*corev1.Secret, len(cases))
	for i, tc := range cases {
		m := framework.CleanUpMarks()
		tc.edit(&m)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rule-%d", i), Labels: map[string]string{}, Annotations: map[string]string{}}, Type: corev1.SecretTypeOpaque}
		for k, v := range m.Labels {
			s.Labels[k] = v.(string)
		}
		for k, v := range m.Annotations {
			s.Annotations[k] = v.(string)
		}
		if secrets[i], err = cluster.Client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := tc.write(secrets[i])
		if err != nil {
			t.Fatal(err)
		}
		if restored(got) {
			t.Fatalf("%s: restored by the full policy: %v %v", tc.rule, got.Labels, got.Annotations)
		}
	}
	// The full policy again at the end, whatever happens.
	t.Cleanup(func() {
		r := run(t, "guard", "install", "--yes")
		if r.Code != 0 || !strings.Contains(r.Stdout, "bound-token-guard configured") {
			t.Errorf("reinstalling the full policy: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		last := len(cases) - 1
		cluster.Eventually(t, 15*time.Second, func() (bool, error) {
			got, err := cases[last].write(secrets[last])
			return err == nil && !restored(got), fmt.Errorf("still the altered policy: %v", err)
		})
	})
	for i, tc := range cases {
		t.Run("without "+tc.rule, func(t *testing.T) {
			putPolicyWithout(t, dyn, tc.rule)
			start := time.Now()
			cluster.Eventually(t, 15*time.Second, func() (bool, error) {
				got, err := tc.write(secrets[i])
				return err == nil && restored(got), fmt.Errorf("not restored (%v): the case does not depend on %s", err, tc.rule)
			})
			t.Logf("restored %s after the rule was removed", time.Since(start).Round(time.Millisecond))
		})
	}
}

// putPolicyWithout replaces the installed policy with the full one minus
// the named matchCondition, marked with a revision of its own.
func putPolicyWithout(t *testing.T, dyn dynamic.Interface, rule string) {
	t.Helper()
	version := wantVersion()
	p, _, err := guard.Objects(version)
	if err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	conds, _, _ := unstructured.NestedSlice(u.Object, "spec", "matchConditions")
	var kept []any
	for _, c := range conds {
		if c.(map[string]any)["name"] != rule {
			kept = append(kept, c)
		}
	}
	if len(kept) != len(conds)-1 {
		t.Fatalf("no matchCondition %q", rule)
	}
	if err := unstructured.SetNestedSlice(u.Object, kept, "spec", "matchConditions"); err != nil {
		t.Fatal(err)
	}
	ann := u.GetAnnotations()
	ann[guard.AnnotationRevision] = "without-" + rule
	u.SetAnnotations(ann)
	r := dyn.Resource(guard.PolicyResource(version))
	cur, err := r.Get(ctx, guard.PolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.SetResourceVersion(cur.GetResourceVersion())
	if _, err := r.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
