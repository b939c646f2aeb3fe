package workload

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
)

// The kinds of other projects' APIs: each entry cites the project's own
// types for its template path and its own client for its rollout rule.
// Their objects are read through the dynamic client as unstructured data;
// a cluster that does not serve one answers its LIST with NotFound.
var customKinds = []*Kind{
	// Argo Rollouts v1.10.1, pkg/apis/rollouts/v1alpha1/types.go:
	// RolloutSpec.Template (optional: spec.workloadRef names a workload
	// whose template the Rollout uses instead), shortNames [ro] in
	// manifests/crds/rollout-crd.yaml.
	{Kind: "Rollout", Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts", Short: []string{"ro"}, TemplatePath: specTemplate,
		api: unstructuredAPI("argoproj.io", "v1alpha1", "rollouts", "Rollout", true, specTemplate, nil),
		rollout: func(obj Object) Rollout {
			// RolloutSpec.Paused: "Paused pauses the rollout at its
			// current step"; `kubectl argo rollouts resume` clears it.
			if p, _, _ := unstructured.NestedBool(obj.(*unstructured.Unstructured).Object, "spec", "paused"); p {
				return Rollout{Held: "the Rollout is paused", Hint: "kubectl argo rollouts resume -n " + obj.GetNamespace() + " " + obj.GetName()}
			}
			return Rollout{}
		},
		status: argoRolloutStatus,
		// RolloutSpec.WorkloadRef (ObjectRef: apiVersion, kind, name):
		// the Rollout runs the template of that workload in its
		// namespace (rollout/templateref.go, informerBasedTemplateResolver).
		runsTemplateOf: func(obj Object) (schema.GroupKind, string) {
			m, _, _ := unstructured.NestedMap(obj.(*unstructured.Unstructured).Object, "spec", "workloadRef")
			kind, _ := m["kind"].(string)
			name, _ := m["name"].(string)
			apiVersion, _ := m["apiVersion"].(string)
			gv, _ := schema.ParseGroupVersion(apiVersion)
			return schema.GroupKind{Group: gv.Group, Kind: kind}, name
		}},
	// Knative Serving v0.51.0, pkg/apis/serving/v1/service_types.go:
	// ServiceSpec inlines ConfigurationSpec, whose Template is a
	// RevisionTemplateSpec (metadata and a RevisionSpec, which inlines a
	// PodSpec); shortNames [kservice, ksvc] in
	// config/core/300-resources/service.yaml.
	{Kind: "Service", Group: "serving.knative.dev", Version: "v1", Resource: "services", Short: []string{"ksvc", "kservice"}, Qualified: true, TemplatePath: specTemplate,
		api:    unstructuredAPI("serving.knative.dev", "v1", "services", "Service", true, specTemplate, nil),
		status: knativeStatus},
	// A Service's Configuration follows it
	// (pkg/reconciler/service/resources/configuration.go,
	// MakeConfigurationFromExisting: the Service's ConfigurationSpec,
	// owned by the Service); shortNames [config, cfg].
	{Kind: "Configuration", Group: "serving.knative.dev", Version: "v1", Resource: "configurations", Short: []string{"config", "cfg"}, Qualified: true, TemplatePath: specTemplate,
		Owners: []schema.GroupKind{{Group: "serving.knative.dev", Kind: "Service"}},
		api:    unstructuredAPI("serving.knative.dev", "v1", "configurations", "Configuration", true, specTemplate, nil),
		status: knativeStatus},
	// A Revision is a Configuration's template at one generation
	// (pkg/reconciler/configuration/resources/revision.go, MakeRevision);
	// its spec cannot change (pkg/apis/serving/v1/revision_validation.go,
	// Revision.Validate: an update of spec is refused as immutable);
	// shortNames [rev].
	{Kind: "Revision", Group: "serving.knative.dev", Version: "v1", Resource: "revisions", Short: []string{"rev"}, Qualified: true, Immutable: true,
		Owners:  []schema.GroupKind{{Group: "serving.knative.dev", Kind: "Configuration"}},
		api:     unstructuredAPI("serving.knative.dev", "v1", "revisions", "Revision", true, nil, []string{"spec"}),
		history: knativeUnrouted},
	// KEDA v2.20.2, apis/keda/v1alpha1/scaledjob_types.go:
	// ScaledJobSpec.JobTargetRef is a batchv1.JobSpec; its Jobs are made
	// from that template as they are needed (pkg/scaling/executor/
	// scale_jobs.go, generateJobs): no rollout, the next Job uses it.
	{Kind: "ScaledJob", Group: "keda.sh", Version: "v1alpha1", Resource: "scaledjobs", Short: []string{"sj"}, TemplatePath: []string{"spec", "jobTargetRef", "template"},
		api:     unstructuredAPI("keda.sh", "v1alpha1", "scaledjobs", "ScaledJob", true, []string{"spec", "jobTargetRef", "template"}, nil),
		rollout: func(Object) Rollout { return Rollout{Next: "Job"} }},
	// OpenShift, openshift/api apps/v1/types.go: DeploymentConfigSpec.
	// Template; served by openshift-apiserver. Its rollout (a deployer pod
	// per revision, driven by its triggers) is `oc rollout status`'s to
	// judge, not this tool's.
	{Kind: "DeploymentConfig", Group: "apps.openshift.io", Version: "v1", Resource: "deploymentconfigs", Short: []string{"dc"}, TemplatePath: specTemplate,
		api: unstructuredAPI("apps.openshift.io", "v1", "deploymentconfigs", "DeploymentConfig", true, specTemplate, nil),
		rollout: func(obj Object) Rollout {
			return Rollout{Held: "this tool does not follow a DeploymentConfig's rollout", Hint: "oc rollout status -n " + obj.GetNamespace() + " dc/" + obj.GetName()}
		}},
	// Short names from the CRDs' own manifests (shortNames).
	argoWorkflowsKind("Workflow", "workflows", []string{"wf"}, true),
	argoWorkflowsKind("WorkflowTemplate", "workflowtemplates", []string{"wftmpl"}, true),
	argoWorkflowsKind("CronWorkflow", "cronworkflows", []string{"cwf", "cronwf"}, true),
	argoWorkflowsKind("ClusterWorkflowTemplate", "clusterworkflowtemplates", []string{"clusterwftmpl", "cwft"}, false),
}

// argoWorkflowsKind is an Argo Workflows kind (v4.0.5): its CRDs leave
// spec opaque (manifests/base/crds/minimal), its pods are made from
// templates that are not pod specs (ArgoWorkflowPodSpecs reads them), and
// this tool does not rewrite them: readers only.
func argoWorkflowsKind(kind, resource string, short []string, namespaced bool) *Kind {
	return &Kind{Kind: kind, Group: "argoproj.io", Version: "v1alpha1", Resource: resource, Short: short,
		api: unstructuredAPI("argoproj.io", "v1alpha1", resource, kind, namespaced, nil, nil),
		podSpecs: func(obj map[string]any, visit func(string, *corev1.PodSpec) error) error {
			return ArgoWorkflowPodSpecs(kind, obj, visit)
		}}
}

// templateOf reads the pod template of an unstructured object.
type templateOf func(u *unstructured.Unstructured) (*corev1.PodTemplateSpec, error)

// templateAt reads a pod template at path.
func templateAt(path []string) templateOf {
	return func(u *unstructured.Unstructured) (*corev1.PodTemplateSpec, error) {
		m, found, err := unstructured.NestedMap(u.Object, path...)
		if err != nil || !found {
			return nil, err
		}
		t := &corev1.PodTemplateSpec{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, t); err != nil {
			return nil, err
		}
		return t, nil
	}
}

// podSpecAt makes a template of the pod spec at path and the object's
// labels and annotations, as a Pod's (a Revision's spec is a pod spec).
func podSpecAt(path ...string) templateOf {
	return func(u *unstructured.Unstructured) (*corev1.PodTemplateSpec, error) {
		m, found, err := unstructured.NestedMap(u.Object, path...)
		if err != nil || !found {
			return nil, err
		}
		t := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: u.GetLabels(), Annotations: u.GetAnnotations()}}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &t.Spec); err != nil {
			return nil, err
		}
		return t, nil
	}
}

// unstructuredAPI is the api of a kind read through the dynamic client.
// Its template is a copy: data the typed template cannot hold stays in the
// object (RawTemplate) and is never written back from the copy.
func unstructuredAPI(group, version, resource, kind string, namespaced bool, path, podSpec []string) api {
	tmpl := templateAt(path)
	switch {
	case path == nil && podSpec == nil:
		tmpl = func(*unstructured.Unstructured) (*corev1.PodTemplateSpec, error) { return nil, nil }
	case path == nil:
		tmpl = podSpecAt(podSpec...)
	}
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	gvk := gvr.GroupVersion().WithKind(kind)
	ri := func(c Clients, ns string) (dynamic.ResourceInterface, error) {
		if c.Dynamic == nil {
			return nil, errNoDynamic(resource + "." + group)
		}
		if !namespaced {
			return c.Dynamic.Resource(gvr), nil
		}
		return c.Dynamic.Resource(gvr).Namespace(ns), nil
	}
	return api{
		clusterScoped: !namespaced,
		new: func() Object {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			return u
		},
		template: func(o Object) *corev1.PodTemplateSpec {
			t, err := tmpl(o.(*unstructured.Unstructured))
			if err != nil {
				return nil
			}
			return t
		},
		setTemplate: func(o Object, t *corev1.PodTemplateSpec) error {
			if path == nil {
				return fmt.Errorf("a %s's pod template cannot be written", kind)
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
			if err != nil {
				return err
			}
			return unstructured.SetNestedField(o.(*unstructured.Unstructured).Object, m, path...)
		},
		raw: func(o Object) any {
			if path == nil {
				return nil
			}
			v, _, _ := unstructured.NestedFieldNoCopy(o.(*unstructured.Unstructured).Object, path...)
			return v
		},
		list: func(ctx context.Context, c Clients, ns string, lo metav1.ListOptions, each func(Object)) error {
			r, err := ri(c, ns)
			if err != nil {
				return err
			}
			return kubeapi.EachPage(ctx, lo, r.List, func(l *unstructured.UnstructuredList) error {
				for i := range l.Items {
					each(&l.Items[i])
				}
				return nil
			})
		},
		get: func(ctx context.Context, c Clients, ns, name string) (Object, error) {
			r, err := ri(c, ns)
			if err != nil {
				return nil, err
			}
			return r.Get(ctx, name, metav1.GetOptions{})
		},
		patch: func(ctx context.Context, c Clients, ns, name string, pt types.PatchType, data []byte, po metav1.PatchOptions) (Object, error) {
			r, err := ri(c, ns)
			if err != nil {
				return nil, err
			}
			return r.Patch(ctx, name, pt, data, po)
		},
	}
}

// argoRolloutStatus judges an Argo Rollout as its own client does
// (argo-rollouts v1.10.1 utils/rollout/rolloututil.go, GetRolloutPhase,
// which `kubectl argo rollouts status` waits on until Healthy or
// Degraded): status.observedGeneration is a string, compared with the
// generation only when it is a number (isGenerationObserved); a Rollout
// whose pause is being cleared is still progressing (IsUnpausing); then
// the controller's status.phase. kstatus (sigs.k8s.io/cli-utils) reads
// observedGeneration as an integer and fails on it, so it is not used.
func argoRolloutStatus(obj Object) (string, bool, error) {
	u := obj.(*unstructured.Unstructured)
	observed, _, _ := unstructured.NestedString(u.Object, "status", "observedGeneration")
	if n, err := strconv.ParseInt(observed, 10, 64); err == nil && n < u.GetGeneration() {
		return "waiting for rollout spec update to be observed", false, nil
	}
	cp, _, _ := unstructured.NestedBool(u.Object, "status", "controllerPause")
	pcs, _, _ := unstructured.NestedSlice(u.Object, "status", "pauseConditions")
	if cp && len(pcs) == 0 {
		return "waiting for rollout to unpause", false, nil
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
	shown := phase
	if msg != "" {
		shown += " - " + msg
	}
	switch phase {
	case "Healthy":
		return shown, true, nil
	case "Degraded":
		return "", false, fmt.Errorf("the Rollout is Degraded: %s", msg)
	case "":
		// A controller older than 1.0 leaves the phase to the client
		// (CalculateRolloutPhase): not judged here, waited for.
		return "waiting for the Rollout's controller to report a phase", false, nil
	}
	return shown, false, nil
}

// knativeStatus judges a Knative Service or Configuration as its own
// types do (Knative Serving v0.51.0 pkg/apis/serving/v1/
// service_lifecycle.go, Service.IsReady and IsFailed; configuration_
// lifecycle.go, the same for a Configuration): the generation observed
// and the Ready condition True (rolled out) or False (failed).
func knativeStatus(obj Object) (string, bool, error) {
	u := obj.(*unstructured.Unstructured)
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if observed != u.GetGeneration() {
		return "waiting for the new generation to be observed", false, nil
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Ready" {
			continue
		}
		reason, _ := m["reason"].(string)
		message, _ := m["message"].(string)
		switch m["status"] {
		case "True":
			return "Ready", true, nil
		case "False":
			return "", false, fmt.Errorf("not Ready: %s %s", reason, message)
		}
		return fmt.Sprintf("Ready is %v: %s %s", m["status"], reason, message), false, nil
	}
	return "waiting for the Ready condition", false, nil
}

// knativeUnrouted: a Revision no Route serves any more is labelled
// routingState=reserve, "no longer referenced by a Route, and is scaled
// down, but may be rapidly pinned to a route to be made active again"
// (Knative Serving v0.51.0 pkg/apis/serving/v1/revision_helpers.go,
// RoutingStateReserve; the garbage collector keeps every Revision not in
// that state, pkg/reconciler/gc/gc.go, isRevisionActive). Pending and
// active Revisions may run pods: readers.
func knativeUnrouted(obj Object) bool {
	return obj.GetLabels()["serving.knative.dev/routingState"] == "reserve"
}
