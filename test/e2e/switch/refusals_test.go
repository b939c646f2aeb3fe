package switche2e

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// What must not be switched is refused or skipped with its reason, left
// unchanged, and still shown; a paused Deployment is changed but not
// waited for. The run exits 1.
func TestRefusals(t *testing.T) {
	ns := cluster.CreateNamespace(t, "refuse")
	cluster.CreateLegacySecret(t, ns, "app", "app-token", true)
	cluster.CreateServiceAccount(t, ns, "other")

	createDeployment(t, ns, "other-sa", 1, podSpec("other", "app-token", nil, nil), nil)
	env := podSpec("app", "app-token", nil, nil)
	env.Containers[0].Env = []corev1.EnvVar{{Name: "KUBE_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app-token"}, Key: "token"}}}}
	createDeployment(t, ns, "env", 1, env, nil)
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"},
		Spec: podSpec("app", "app-token", nil, nil)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createDeployment(t, ns, "helm", 1, podSpec("app", "app-token", nil, nil), func(d *appsv1.Deployment) {
		d.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
		d.Annotations = map[string]string{"meta.helm.sh/release-name": "web"}
	})
	createDeployment(t, ns, "paused", 1, podSpec("app", "app-token", nil, nil), func(d *appsv1.Deployment) { d.Spec.Paused = true })

	names := []string{"other-sa", "env", "helm", "paused"}
	before := map[string][]byte{}
	for _, n := range names {
		before[n] = templateJSON(t, "Deployment", ns, n)
	}
	bare, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, "bare", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// -o yaml: one document per workload that has a change to show, the
	// skipped Helm one and the refused bare Pod (immutable) included.
	y := run(t, "switch", "-n", ns, "-o", "yaml").MustCode(t, 0)
	docs := map[string]map[string]any{}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(y.Stdout)), 4096)
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc == nil {
			continue
		}
		md := doc["metadata"].(map[string]any)
		for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"} {
			if _, ok := md[f]; ok {
				t.Errorf("%s/%s keeps server-set metadata.%s", doc["kind"], md["name"], f)
			}
		}
		if _, ok := doc["status"]; ok {
			t.Errorf("%s/%s keeps its status", doc["kind"], md["name"])
		}
		docs[doc["kind"].(string)+"/"+md["name"].(string)] = doc
	}
	for _, k := range []string{"Deployment/helm", "Deployment/paused", "Pod/bare"} {
		if docs[k] == nil {
			t.Fatalf("-o yaml lacks %s; got %d documents:\n%s", k, len(docs), y.Stdout)
		}
	}
	if !strings.Contains(y.Stdout, "serviceAccountToken:") {
		t.Fatalf("-o yaml shows no switched volume:\n%s", y.Stdout)
	}

	r := run(t, "switch", "-n", ns, "--apply", "--yes", "--backup-dir", t.TempDir()+"/b", "-o", "json").MustCode(t, 1)
	got := framework.WorkloadOutcomes(t, r.Stdout)
	if o := wantResult(t, got, "Deployment/other-sa", switcher.OutRefused); !strings.Contains(o.Message, "runs as other") {
		t.Errorf("other-sa: %s", o.Message)
	}
	if o := wantResult(t, got, "Deployment/env", switcher.OutRefused); !strings.Contains(o.Message, "container app") || !strings.Contains(o.Message, "env var KUBE_TOKEN") {
		t.Errorf("env: %s", o.Message)
	}
	if o := wantResult(t, got, "Pod/bare", switcher.OutRefused); !strings.Contains(o.Message, "immutable") {
		t.Errorf("bare: %s", o.Message)
	}
	if o := wantResult(t, got, "Deployment/helm", switcher.OutSkipped); !strings.Contains(o.Message, "managed by Helm") {
		t.Errorf("helm: %s", o.Message)
	}
	if o := wantResult(t, got, "Deployment/paused", switcher.OutNotRolled); !strings.Contains(o.Message, "paused") {
		t.Errorf("paused: %s", o.Message)
	}
	for _, n := range []string{"other-sa", "env", "helm"} {
		if !bytes.Equal(templateJSON(t, "Deployment", ns, n), before[n]) {
			t.Errorf("%s was changed", n)
		}
	}
	if bytes.Equal(templateJSON(t, "Deployment", ns, "paused"), before["paused"]) {
		t.Error("the paused Deployment's template was not changed")
	}
	if p := podTemplateOf(t, "Deployment", ns, "paused"); p.Spec.Volumes[0].Projected == nil {
		t.Error("the paused Deployment's volume is not projected")
	}
	after, _ := cluster.Client.CoreV1().Pods(ns).Get(ctx, "bare", metav1.GetOptions{})
	// Its status moves (scheduler, kwok); its volumes must not.
	if after.Spec.Volumes[0].Secret == nil || after.Spec.Volumes[0].Secret.SecretName != bare.Spec.Volumes[0].Secret.SecretName {
		t.Errorf("the bare Pod's volume changed: %+v", after.Spec.Volumes[0])
	}
}
