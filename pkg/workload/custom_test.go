package workload

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// crdNames are what a published CRD says of its kind.
type crdNames struct {
	Spec struct {
		Group string
		Names struct {
			Kind, Plural string
			ShortNames   []string
		}
		Versions []struct {
			Name   string
			Served bool
		}
	}
}

// TestCustomKindsAreNamedAsTheirCRDs: each entry of another project's
// kind has the group, kind, plural and short names of the project's own
// published CRD, a version it serves, and a template path where the CRD's
// schema has the pod spec (the shape search's own finding).
func TestCustomKindsAreNamedAsTheirCRDs(t *testing.T) {
	for _, tc := range []struct {
		crd     crdFile
		kind    string
		podSpec string
	}{
		{rolloutCRD, "Rollout", ".spec.template.spec"},
		{knativeServiceCRD, "Service", ".spec.template.spec"},
		{crdFile{knativeServiceCRD.module, knativeServiceCRD.version, "config/core/300-resources/configuration.yaml"}, "Configuration", ".spec.template.spec"},
		{knativeRevCRD, "Revision", ".spec"},
		{scaledJobCRD, "ScaledJob", ".spec.jobTargetRef.template.spec"},
		// Argo Workflows' CRDs leave spec opaque: no pod spec by shape.
		{workflowCRD, "Workflow", ""},
		{crdFile{workflowCRD.module, workflowCRD.version, "manifests/base/crds/minimal/argoproj.io_workflowtemplates.yaml"}, "WorkflowTemplate", ""},
		{crdFile{workflowCRD.module, workflowCRD.version, "manifests/base/crds/minimal/argoproj.io_cronworkflows.yaml"}, "CronWorkflow", ""},
		{crdFile{workflowCRD.module, workflowCRD.version, "manifests/base/crds/minimal/argoproj.io_clusterworkflowtemplates.yaml"}, "ClusterWorkflowTemplate", ""},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			var c crdNames
			if err := yaml.Unmarshal(readModuleFile(t, tc.crd), &c); err != nil {
				t.Fatal(err)
			}
			k := Lookup(c.Spec.Group, c.Spec.Names.Kind)
			if k == nil || k.BuiltIn() {
				t.Fatalf("no entry for %s.%s", c.Spec.Names.Kind, c.Spec.Group)
			}
			if k.Resource != c.Spec.Names.Plural {
				t.Errorf("resource %q, CRD plural %q", k.Resource, c.Spec.Names.Plural)
			}
			for _, s := range k.Short {
				if !slices.Contains(c.Spec.Names.ShortNames, s) {
					t.Errorf("short name %q is not the CRD's (%v)", s, c.Spec.Names.ShortNames)
				}
			}
			if !slices.ContainsFunc(c.Spec.Versions, func(v struct {
				Name   string
				Served bool
			}) bool {
				return v.Name == k.Version && v.Served
			}) {
				t.Errorf("version %s is not served by the CRD", k.Version)
			}
			if tc.podSpec == "" {
				if k.TemplatePath != nil || k.podSpecs == nil {
					t.Errorf("an opaque kind needs its own reader and no template path")
				}
				return
			}
			_, s := readCRD(t, tc.crd)
			paths := pathStrings(PodSpecPaths(s))
			if !slices.Contains(paths, tc.podSpec) {
				t.Fatalf("the CRD's pod specs are at %v, not %s", paths, tc.podSpec)
			}
			if k.TemplatePath != nil && "."+strings.Join(k.TemplatePath, ".")+".spec" != tc.podSpec {
				t.Errorf("TemplatePath %v, the CRD's pod spec is at %s", k.TemplatePath, tc.podSpec)
			}
		})
	}
}

func rollout(name string, template map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": name, "namespace": "ns"},
		"spec":     map[string]any{},
	}}
	if template != nil {
		u.Object["spec"].(map[string]any)["template"] = template
	}
	return u
}

// TestUnstructuredTemplate: a custom kind's template is read from the
// data (volumes the CRD leaves untyped included), written back at its
// path, and kept as the data holds it for a restore, with fields no typed
// template knows.
func TestUnstructuredTemplate(t *testing.T) {
	k := Lookup("argoproj.io", "Rollout")
	obj := rollout("web", map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "c", "image": "i"}},
			"volumes":    []any{map[string]any{"name": "t", "secret": map[string]any{"secretName": "tok"}, "unknownToPods": "kept"}},
		},
	})
	if ForObject(obj) != k {
		t.Fatal("ForObject does not find the Rollout")
	}
	tpl := k.Template(obj)
	if tpl == nil || len(tpl.Spec.Volumes) != 1 || tpl.Spec.Volumes[0].Secret.SecretName != "tok" || tpl.Labels["app"] != "web" {
		t.Fatalf("template %+v", tpl)
	}
	raw := k.RawTemplate(obj).(map[string]any)
	if v := raw["spec"].(map[string]any)["volumes"].([]any)[0].(map[string]any)["unknownToPods"]; v != "kept" {
		t.Errorf("raw template lost a field: %v", raw)
	}
	tpl.Spec.ServiceAccountName = "changed"
	if err := k.SetTemplate(obj, tpl); err != nil {
		t.Fatal(err)
	}
	if sa, _, _ := unstructured.NestedString(obj.Object, "spec", "template", "spec", "serviceAccountName"); sa != "changed" {
		t.Errorf("SetTemplate did not write at the path: %v", obj.Object)
	}
	// A Rollout with spec.workloadRef has no template of its own.
	if tpl := k.Template(rollout("ref", nil)); tpl != nil {
		t.Errorf("a Rollout without template has %+v", tpl)
	}
	// A Revision's spec is a pod spec: its template is made up, and
	// cannot be written.
	rev := Lookup("serving.knative.dev", "Revision")
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
		"metadata": map[string]any{"name": "r", "namespace": "ns"},
		"spec":     map[string]any{"containerConcurrency": int64(0), "containers": []any{map[string]any{"image": "i", "envFrom": []any{map[string]any{"secretRef": map[string]any{"name": "tok"}}}}}}}}
	if tpl := rev.Template(u); tpl == nil || tpl.Spec.Containers[0].EnvFrom[0].SecretRef.Name != "tok" {
		t.Errorf("revision template %+v", tpl)
	}
	if err := rev.SetTemplate(u, &corev1.PodTemplateSpec{}); err == nil {
		t.Error("a Revision's template was written")
	}
}

// TestCustomKindsThroughTheDynamicClient: a custom kind is read and
// patched at its own resource, through the dynamic client, and needs one.
func TestCustomKindsThroughTheDynamicClient(t *testing.T) {
	ctx := context.Background()
	for _, k := range Kinds() {
		if k.BuiltIn() {
			continue
		}
		t.Run(k.Kind, func(t *testing.T) {
			obj := k.New().(*unstructured.Unstructured)
			obj.SetName("x")
			ns := "ns"
			if !k.Namespaced() {
				ns = ""
			}
			obj.SetNamespace(ns)
			c := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{k.GroupVersionResource(): k.Kind + "List"}, obj)
			got, err := k.Get(ctx, Clients{Dynamic: c}, ns, "x")
			if err != nil || ForObject(got) != k {
				t.Fatalf("Get = %v, %v", got, err)
			}
			p, err := k.Patch(ctx, Clients{Dynamic: c}, ns, "x", types.MergePatchType, []byte(`{"metadata":{"labels":{"p":"1"}}}`), metav1.PatchOptions{})
			if err != nil || p.GetLabels()["p"] != "1" {
				t.Errorf("Patch = %v, %v", p, err)
			}
			n := 0
			if err := k.List(ctx, Clients{Dynamic: c}, ns, metav1.ListOptions{}, func(Object) { n++ }); err != nil || n != 1 {
				t.Errorf("List: %d, %v", n, err)
			}
			for _, a := range c.Actions() {
				if a.GetResource() != k.GroupVersionResource() {
					t.Errorf("%s on %v", a.GetVerb(), a.GetResource())
				}
			}
			if _, err := k.Get(ctx, Clients{}, "ns", "x"); err == nil {
				t.Error("read without a dynamic client")
			}
		})
	}
}

func TestParseCustomKinds(t *testing.T) {
	for w, want := range map[string]string{
		"rollout": "Rollout.argoproj.io", "ro": "Rollout.argoproj.io", "rollouts.argoproj.io": "Rollout.argoproj.io", "Rollout.argoproj.io": "Rollout.argoproj.io",
		"ksvc": "Service.serving.knative.dev", "service.serving.knative.dev": "Service.serving.knative.dev",
		"scaledjob": "ScaledJob.keda.sh", "dc": "DeploymentConfig.apps.openshift.io",
	} {
		if k := Parse(w); k == nil || k.Kind+"."+k.Group != want {
			t.Errorf("Parse(%q) = %v, want %s", w, k, want)
		}
	}
	// kubectl takes "service" for the core Service: never Knative's.
	for _, w := range []string{"service", "services", "revision", "configuration"} {
		if k := Parse(w); k != nil {
			t.Errorf("Parse(%q) = %s.%s", w, k.Kind, k.Group)
		}
	}
}

// TestOwnersAreKeyedByGroupAndKind: an owner is followed only when its
// group and kind both match: a Rollout's ReplicaSets, a ScaledJob's Jobs
// and a Knative Service's Configuration follow their owner; a kind of the
// same name in another group does not.
func TestOwnersAreKeyedByGroupAndKind(t *testing.T) {
	own := func(apiVersion, kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "o", Controller: ptr.To(true)}}}
	}
	cfg := func(m metav1.ObjectMeta) Object {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration"}}
		u.SetOwnerReferences(m.OwnerReferences)
		return u
	}
	for _, c := range []struct {
		kind, group string
		obj         Object
		follows     bool
	}{
		{"ReplicaSet", "apps", &appsv1.ReplicaSet{ObjectMeta: own("argoproj.io/v1alpha1", "Rollout")}, true},
		{"ReplicaSet", "apps", &appsv1.ReplicaSet{ObjectMeta: own("example.com/v1", "Rollout")}, false},
		{"ReplicaSet", "apps", &appsv1.ReplicaSet{ObjectMeta: own("example.com/v1", "Deployment")}, false},
		{"Job", "batch", &batchv1.Job{ObjectMeta: own("keda.sh/v1alpha1", "ScaledJob")}, true},
		{"ReplicationController", "", &corev1.ReplicationController{ObjectMeta: own("apps.openshift.io/v1", "DeploymentConfig")}, true},
		{"Configuration", "serving.knative.dev", cfg(own("serving.knative.dev/v1", "Service")), true},
		{"Configuration", "serving.knative.dev", cfg(own("v1", "Service")), false},
	} {
		if got := Lookup(c.group, c.kind).Follows(c.obj); got != c.follows {
			t.Errorf("%s owned by %v: Follows = %v", c.kind, c.obj.GetOwnerReferences(), got)
		}
	}
}

func argo(gen int64, status map[string]any) Object {
	u := rollout("web", nil)
	u.SetGeneration(gen)
	u.Object["status"] = status
	return u
}

// TestArgoRolloutStatus follows argo-rollouts' GetRolloutPhase: the
// string observedGeneration compared only when numeric, a pause being
// cleared, then the phase.
func TestArgoRolloutStatus(t *testing.T) {
	for _, c := range []struct {
		name   string
		obj    Object
		done   bool
		failed bool
		msg    string
	}{
		{"generation not observed", argo(3, map[string]any{"observedGeneration": "2", "phase": "Healthy"}), false, false, "observed"},
		{"healthy", argo(3, map[string]any{"observedGeneration": "3", "phase": "Healthy"}), true, false, "Healthy"},
		{"v0.9 hash", argo(3, map[string]any{"observedGeneration": "5c8f7d", "phase": "Healthy"}), true, false, "Healthy"},
		{"unpausing", argo(3, map[string]any{"observedGeneration": "3", "phase": "Healthy", "controllerPause": true}), false, false, "unpause"},
		{"paused at a step", argo(3, map[string]any{"observedGeneration": "3", "phase": "Paused", "message": "CanaryPauseStep", "controllerPause": true, "pauseConditions": []any{map[string]any{"reason": "CanaryPauseStep"}}}), false, false, "Paused - CanaryPauseStep"},
		{"progressing", argo(3, map[string]any{"observedGeneration": "3", "phase": "Progressing", "message": "more replicas need to be updated"}), false, false, "Progressing"},
		{"degraded", argo(3, map[string]any{"observedGeneration": "3", "phase": "Degraded", "message": "ProgressDeadlineExceeded"}), false, true, ""},
		{"no phase", argo(3, map[string]any{"observedGeneration": "3"}), false, false, "phase"},
	} {
		msg, done, err := RolloutStatus(c.obj)
		if done != c.done || (err != nil) != c.failed || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %q %v %v", c.name, msg, done, err)
		}
	}
}

func knative(gen, observed int64, ready string) Object {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": "s", "namespace": "ns", "generation": gen},
		"status":   map[string]any{"observedGeneration": observed, "conditions": []any{map[string]any{"type": "Ready", "status": ready, "reason": "R", "message": "m"}}},
	}}
}

// TestKnativeStatus follows Service.IsReady and IsFailed.
func TestKnativeStatus(t *testing.T) {
	for _, c := range []struct {
		obj          Object
		done, failed bool
	}{
		{knative(2, 1, "True"), false, false},
		{knative(2, 2, "True"), true, false},
		{knative(2, 2, "Unknown"), false, false},
		{knative(2, 2, "False"), false, true},
		{knative(2, 1, "False"), false, false},
	} {
		_, done, err := RolloutStatus(c.obj)
		if done != c.done || (err != nil) != c.failed {
			t.Errorf("%v: done %v err %v", c.obj.(*unstructured.Unstructured).Object["status"], done, err)
		}
	}
}

// TestCustomRolloutOf: a paused Rollout is held, a ScaledJob's next Job
// uses the template, a DeploymentConfig's rollout is not judged (never
// "rolled out"), a Knative Service has a rollout.
func TestCustomRolloutOf(t *testing.T) {
	paused := rollout("web", nil)
	paused.Object["spec"].(map[string]any)["paused"] = true
	dc := Lookup("apps.openshift.io", "DeploymentConfig").New()
	sj := Lookup("keda.sh", "ScaledJob").New()
	for name, c := range map[string]struct {
		obj        Object
		next, held string
	}{
		"rollout":          {rollout("web", nil), "", ""},
		"paused rollout":   {paused, "", "paused"},
		"scaledjob":        {sj, "Job", ""},
		"deploymentconfig": {dc, "", "does not follow"},
		"knative service":  {knative(1, 1, "True"), "", ""},
	} {
		r := RolloutOf(c.obj)
		if r.Next != c.next || (c.held == "") != (r.Held == "") || !strings.Contains(r.Held, c.held) {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if _, _, err := RolloutStatus(dc); err == nil {
		t.Error("a DeploymentConfig's rollout was judged")
	}
}

// TestKnativeUnroutedRevisionIsHistory: a Revision labelled
// routingState=reserve is history; pending, active or unlabelled ones may
// run pods.
func TestKnativeUnroutedRevisionIsHistory(t *testing.T) {
	for state, want := range map[string]bool{"reserve": true, "active": false, "pending": false, "": false} {
		u := Lookup("serving.knative.dev", "Revision").New()
		if state != "" {
			u.SetLabels(map[string]string{"serving.knative.dev/routingState": state})
		}
		if got := History(u); got != want {
			t.Errorf("routingState %q: History = %v", state, got)
		}
	}
	// The label means nothing on another kind.
	r := rollout("web", nil)
	r.SetLabels(map[string]string{"serving.knative.dev/routingState": "reserve"})
	if History(r) {
		t.Error("a Rollout labelled reserve is history")
	}
}
