package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var rolloutsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// createRollout creates an Argo Rollout at 0 replicas (nothing runs it:
// no pod reads the Secret now) whose pod template mounts secret, through
// the real CRD, which leaves volumes untyped.
func createRollout(t *testing.T, ns, name, secret string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": int64(0),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"strategy": map[string]any{"canary": map[string]any{}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{
					"serviceAccountName": "app",
					"containers":         []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}},
					"volumes":            []any{map[string]any{"name": "token", "secret": map[string]any{"secretName": secret}}},
				},
			},
		},
	}}
	if _, err := dyn.Resource(rolloutsGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCustomWorkloadReaderKeepsItsSecret: a legacy token Secret read only
// by an Argo Rollout at 0 replicas (the real CRD, from argo-rollouts'
// module) is judged read by it, never "invalidate", and --apply leaves it.
// Without the Rollout the same Secret is "invalidate": the reader is what
// keeps it.
func TestCustomWorkloadReaderKeepsItsSecret(t *testing.T) {
	cluster.InstallCRD(t, "rollouts.argoproj.io", false)
	ns := cluster.CreateNamespace(t, "rollout")
	s := legacySecret(t, ns, "app", "app-token", true)
	legacySecret(t, ns, "app", "spare-token", true)
	createRollout(t, ns, "web", "app-token")

	got := audit(t, "migrate", "-n", ns)
	wantVerdict(t, got, "spare-token", legacy.VerdictInvalidate)
	f := got["app-token"]
	if f == nil || f.Verdict == legacy.VerdictInvalidate || f.Verdict == legacy.VerdictDelete {
		t.Fatalf("app-token, read by a Rollout at 0 replicas: %+v", f)
	}
	readers := ""
	for _, r := range f.Readers {
		readers += r.String() + ";"
	}
	if !strings.Contains(readers, "rollout.argoproj.io/web (volume)") {
		t.Errorf("app-token readers %q, want rollout.argoproj.io/web (volume)", readers)
	}
	r := run(t, "migrate", "-n", ns, "--apply", "--yes", "--backup-dir", backupDir(t), "-o", "json").MustCode(t, 0)
	if o := framework.SecretOutcomes(t, r.Stdout)[ns+"/app-token"]; o.Result != legacy.OutSkipRead {
		t.Errorf("--apply: app-token outcome %+v, want %s", o, legacy.OutSkipRead)
	}
	unchanged(t, s)
}

// TestUnlistableWorkloadAPIMakesReadersUnknown: a user who may read
// everything migrate reads but the Rollouts gets "unknown" for the
// Secrets of the namespace, with the reason, never "invalidate"; the
// same Secret is "invalidate" for one who may list them.
func TestUnlistableWorkloadAPIMakesReadersUnknown(t *testing.T) {
	cluster.InstallCRD(t, "rollouts.argoproj.io", false)
	ns := cluster.CreateNamespace(t, "norollouts")
	legacySecret(t, ns, "app", "app-token", true)
	cluster.CreateServiceAccount(t, ns, "auditor")
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets", "serviceaccounts", "pods", "replicationcontrollers", "configmaps"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs", "jobs"}, Verbs: []string{"get", "list"}},
	}
	name := "audit-but-rollouts-" + ns
	if _, err := cluster.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}) })
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "auditor", Namespace: ns}}}
	if _, err := cluster.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}) })

	wantVerdict(t, audit(t, "migrate", "-n", ns), "app-token", legacy.VerdictInvalidate)
	as := "system:serviceaccount:" + ns + ":auditor"
	cluster.Eventually(t, 10*time.Second, func() (bool, error) {
		f := audit(t, "--as", as, "migrate", "-n", ns)["app-token"]
		return f != nil && f.Verdict == legacy.VerdictUnknown, nil
	})
	f := audit(t, "--as", as, "migrate", "-n", ns)["app-token"]
	if !strings.Contains(f.Reason, "rollouts.argoproj.io") || !strings.Contains(f.Reason, "forbidden") {
		t.Errorf("reason %q, want the forbidden LIST of rollouts.argoproj.io named", f.Reason)
	}
}

// TestRolloutRevisionHistory: a ReplicaSet at 0 replicas controlled by an
// Argo Rollout (made here with the owner reference argo-rollouts' controller
// sets; argo-rollouts v1.10.1 rollout/sync.go, reconcileRevisionHistoryLimit
// keeps such ReplicaSets as revision history) is reported as history, not
// as a reader: its Secret is "invalidate", as a Deployment's old
// ReplicaSet's is, while the Secret the Rollout's template reads is kept.
func TestRolloutRevisionHistory(t *testing.T) {
	cluster.InstallCRD(t, "rollouts.argoproj.io", false)
	ns := cluster.CreateNamespace(t, "rollouthistory")
	legacySecret(t, ns, "app", "app-token", true)
	legacySecret(t, ns, "app", "old-token", true)
	createRollout(t, ns, "web", "app-token")
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := dyn.Resource(rolloutsGVR).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	if _, err := cluster.Client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-old", OwnerReferences: []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "web", UID: ro.GetUID(), Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
				Volumes:    []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "old-token"}}}},
			}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := audit(t, "migrate", "-n", ns)
	wantVerdict(t, got, "old-token", legacy.VerdictInvalidate)
	if f := got["old-token"]; len(f.Readers) != 1 || f.Readers[0].String() != "replicaset/web-old (volume, rollout history)" {
		t.Errorf("old-token readers %v, want the Rollout's ReplicaSet as history", f.Readers)
	}
	if f := got["app-token"]; f.Verdict == legacy.VerdictInvalidate {
		t.Errorf("app-token, read by the Rollout's template: %+v", f)
	}
}

// createCustom creates an object of another API through the dynamic
// client, with a pod spec at spec (a template's or a Revision's) that
// mounts secret.
func createCustom(t *testing.T, gvr schema.GroupVersionResource, kind, ns, name string, labels map[string]any, spec func(podSpec map[string]any) map[string]any, secret string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	podSpec := map[string]any{
		"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}},
		"volumes":    []any{map[string]any{"name": "token", "secret": map[string]any{"secretName": secret}}},
	}
	md := map[string]any{"name": name}
	if labels != nil {
		md["labels"] = labels
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": kind, "metadata": md, "spec": spec(podSpec),
	}}
	if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s: %v", kind, name, err)
	}
}

// TestKnativeAndKEDAReaders, on Knative Serving's and KEDA's own CRDs: a
// Knative Service's template and a KEDA ScaledJob's job template are
// readers (named with their group); a Revision that a Route may serve
// (routingState active) is a reader, and one no Route serves
// (routingState=reserve, Knative's own garbage-collection rule) is
// history: its Secret is "invalidate", as an old ReplicaSet's is.
func TestKnativeAndKEDAReaders(t *testing.T) {
	for _, crd := range []string{"services.serving.knative.dev", "revisions.serving.knative.dev", "scaledjobs.keda.sh"} {
		cluster.InstallCRD(t, crd, false)
	}
	ns := cluster.CreateNamespace(t, "knative")
	for _, s := range []string{"svc-token", "active-token", "reserve-token", "job-token", "spare-token"} {
		legacySecret(t, ns, "app", s, true)
	}
	template := func(p map[string]any) map[string]any {
		return map[string]any{"template": map[string]any{"spec": p}}
	}
	revision := func(p map[string]any) map[string]any { return p }
	createCustom(t, schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}, "Service", ns, "web", nil, template, "svc-token")
	revs := schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "revisions"}
	createCustom(t, revs, "Revision", ns, "web-00002", map[string]any{"serving.knative.dev/routingState": "active"}, revision, "active-token")
	createCustom(t, revs, "Revision", ns, "web-00001", map[string]any{"serving.knative.dev/routingState": "reserve"}, revision, "reserve-token")
	createCustom(t, schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledjobs"}, "ScaledJob", ns, "jobs", nil, func(p map[string]any) map[string]any {
		return map[string]any{"jobTargetRef": map[string]any{"template": map[string]any{"spec": p}},
			"triggers": []any{map[string]any{"type": "cron", "metadata": map[string]any{"timezone": "Etc/UTC", "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "1"}}}}
	}, "job-token")

	got := audit(t, "migrate", "-n", ns)
	wantVerdict(t, got, "spare-token", legacy.VerdictInvalidate)
	wantVerdict(t, got, "reserve-token", legacy.VerdictInvalidate)
	for secret, reader := range map[string]string{
		"svc-token":    "service.serving.knative.dev/web (volume)",
		"active-token": "revision.serving.knative.dev/web-00002 (volume)",
		"job-token":    "scaledjob.keda.sh/jobs (volume)",
	} {
		f := got[secret]
		if f == nil || f.Verdict == legacy.VerdictInvalidate || f.Verdict == legacy.VerdictDelete {
			t.Errorf("%s, read by %s: %+v", secret, reader, f)
			continue
		}
		var rs []string
		for _, r := range f.Readers {
			rs = append(rs, r.String())
		}
		if !slices.Contains(rs, reader) {
			t.Errorf("%s readers %v, want %s", secret, rs, reader)
		}
	}
	var history []string
	for _, r := range got["reserve-token"].Readers {
		if r.History {
			history = append(history, r.Name)
		}
	}
	if !slices.Equal(history, []string{"web-00001"}) {
		t.Errorf("reserve-token history %v, want the unrouted Revision web-00001", history)
	}
}

// TestArgoWorkflowTemplateReaders, on Argo Workflows' own CRD, whose spec
// is opaque: a WorkflowTemplate whose container template mounts a Secret
// through the workflow's spec.volumes is a reader, found by the table's
// known-path entry (ArgoWorkflowPodSpecs; the shape search finds no pod
// spec there, so this fails when the entry is removed); one whose Secret
// name is an expression makes the namespace's readers unknown.
func TestArgoWorkflowTemplateReaders(t *testing.T) {
	cluster.InstallCRD(t, "workflowtemplates.argoproj.io", false)
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflowtemplates"}
	wf := func(secret string) func(map[string]any) map[string]any {
		return func(map[string]any) map[string]any {
			return map[string]any{
				"entrypoint": "main",
				"volumes":    []any{map[string]any{"name": "token", "secret": map[string]any{"secretName": secret}}},
				"templates": []any{map[string]any{"name": "main", "container": map[string]any{"image": "registry.k8s.io/pause:3.10",
					"volumeMounts": []any{map[string]any{"name": "token", "mountPath": "/token"}}}}},
			}
		}
	}
	ns := cluster.CreateNamespace(t, "argowf")
	legacySecret(t, ns, "app", "wf-token", true)
	legacySecret(t, ns, "app", "wf-spare-token", true)
	createCustom(t, gvr, "WorkflowTemplate", ns, "nightly", nil, wf("wf-token"), "")
	got := audit(t, "migrate", "-n", ns)
	wantVerdict(t, got, "wf-spare-token", legacy.VerdictInvalidate)
	f := got["wf-token"]
	if f == nil || f.Verdict == legacy.VerdictInvalidate || len(f.Readers) == 0 || f.Readers[0].String() != "workflowtemplate.argoproj.io/nightly (volume)" {
		t.Fatalf("wf-token, read by a WorkflowTemplate: %+v", f)
	}

	// A Secret named by an expression makes its namespace's readers
	// unknown, and only its namespace's: the other is judged on.
	ns2 := cluster.CreateNamespace(t, "argowfexpr")
	legacySecret(t, ns2, "app", "param-token", true)
	createCustom(t, gvr, "WorkflowTemplate", ns2, "param", nil, wf("{{workflow.parameters.secret}}"), "")
	got = audit(t, "migrate", "-A")
	if f := got["param-token"]; f == nil || f.Verdict != legacy.VerdictUnknown || !strings.Contains(f.Reason, "workflowtemplate.argoproj.io "+ns2+"/param") {
		t.Errorf("param-token beside a WorkflowTemplate whose Secret is an expression: %+v", f)
	}
	wantVerdict(t, got, "wf-spare-token", legacy.VerdictInvalidate)
}
