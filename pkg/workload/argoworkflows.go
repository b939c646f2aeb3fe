package workload

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Argo Workflows' CRDs leave spec x-kubernetes-preserve-unknown-fields
// (API.Opaque), and a Workflow holds no pod spec: its controller builds
// each pod from a template. What follows reads the project's own types
// and the controller's pod construction, at github.com/argoproj/
// argo-workflows/v4 v4.0.5 (test/modcache.ArgoWorkflowsVersion):
//
//   - pkg/apis/workflow/v1alpha1/workflow_types.go: WorkflowSpec
//     (templates, volumes, imagePullSecrets, podSpecPatch,
//     templateDefaults, workflowTemplateRef), Template (container,
//     containerSet, script, resource, data, http, plugin, steps, dag,
//     volumes, initContainers, sidecars, podSpecPatch), UserContainer (a
//     Container inline, with mirrorVolumeMounts), ScriptTemplate (a
//     Container inline, with source), WorkflowStep.Inline and
//     DAGTask.Inline (a whole Template), Template.GetType (which of a
//     template's kinds wins);
//     container_set_template_types.go: ContainerSetTemplate.Containers
//     (ContainerNode: a Container inline, with dependencies);
//     cron_workflow_types.go: CronWorkflowSpec.WorkflowSpec
//     (spec.workflowSpec); workflow_template_types.go and
//     cluster_workflow_template_types.go: Spec is a WorkflowSpec.
//   - workflow/controller/workflowpod.go, createWorkflowPod: the pod of a
//     container, containerSet, script, resource or data template
//     (operator.go executeContainer, executeScript, executeResource,
//     executeData; container_set_template.go executeContainerSet) gets
//     the main containers passed in (the template's container, its
//     script's container, its containerSet's containers; for resource
//     and data templates newExecContainer, the controller's argoexec with
//     no user env), volumes from createVolumes (the template's volumes)
//     and addVolumeReferences (the workflow's spec.volumes and
//     volumeClaimTemplates a container mounts), imagePullSecrets =
//     execWf.Spec.ImagePullSecrets, a secret volume for each Secret its
//     artifacts' locations name (addVolumeReferences,
//     createSecretVolumesAndMounts), the template's initContainers
//     (addInitContainers) and sidecars (addSidecars), then the
//     workflow's and the template's podSpecPatch, strategic-merge
//     patched onto the pod spec in that order (processPodSpecPatch,
//     workflow/util/util.go ApplyPodSpecPatch).
//   - workflow/controller/operator.go, mergedTemplateDefaultsInto:
//     spec.templateDefaults is strategic-merged under every template
//     before it runs (the template wins); its container, script,
//     containerSet, ... apply only to a template of that type.
//   - workflow/controller/agent.go, createAgentPod: http and plugin
//     templates run in the workflow's one agent pod, whose containers
//     are the controller's argoexec and the executor plugins' sidecars
//     (ExecutorPlugin ConfigMaps, not the workflow); of the workflow it
//     takes only spec.imagePullSecrets and spec.podSpecPatch, never a
//     template's volumes, initContainers, sidecars or podSpecPatch.
//
// What a pod reads that the object does not name is not known here:
// the executor's service account token Secret (setupServiceAccount and
// createAgentPod mount the token Secret of executor.serviceAccountName,
// of spec.serviceAccountName for the agent, found from the
// ServiceAccount: operator.go getServiceAccountTokenName), the artifact
// repository's credentials (addArchiveLocation, from the controller's
// configuration or artifactRepositoryRef's ConfigMap), the controller's
// kubeconfig Secret (createVolumes), artifact locations a template gets
// as arguments from a step, a dag task or spec.arguments, and Secrets
// the agent reads through the API (an http template's headers'
// secretKeyRef).
//
// Not read: status. status.storedTemplates holds templates resolved from
// spec.templates or from WorkflowTemplates and ClusterWorkflowTemplates
// (templateRef), and status.storedWorkflowTemplateSpec the spec joined
// from the Workflow's own spec and its workflowTemplateRef's: each is
// derived from a spec that is itself read, here or as the
// WorkflowTemplate listed on its own.

// argoWorkflowKinds are the kinds ArgoWorkflowPodSpecs reads and where
// each holds its WorkflowSpec.
var argoWorkflowKinds = map[string][]string{
	"Workflow":                {"spec"},
	"WorkflowTemplate":        {"spec"},
	"ClusterWorkflowTemplate": {"spec"},
	"CronWorkflow":            {"spec", "workflowSpec"},
}

// ArgoWorkflowPodSpecs visits the pod specs an Argo Workflows object's
// pods are made from: kind is Workflow, WorkflowTemplate,
// ClusterWorkflowTemplate or CronWorkflow (any other is an error) and
// obj the object's data (an unstructured object's Object), whose
// WorkflowSpec is spec (spec.workflowSpec for a CronWorkflow).
//
// Each template that makes a pod with containers or volumes of the
// user's (container, script, containerSet, resource, data; in
// spec.templates and, at any depth, in a steps' or dag's inline
// templates) is visited as one synthetic pod spec at the template's path
// (".spec.templates[2]", ".spec.workflowSpec.templates[0]",
// ".spec.templates[0].steps[1][0].inline"): containers are the main
// container (the template's container or script's container), the
// containerSet's containers and the sidecars, initContainers the
// template's; volumes the workflow's spec.volumes (all of them: the
// controller adds those a container mounts, which a podSpecPatch may
// change), the template's, and a secret volume for each Secret named by
// the template's artifact locations (archiveLocation, inputs.artifacts,
// outputs.artifacts, data.source.artifactPaths: S3, Git, Artifactory,
// HDFS, OSS, GCS, HTTP and Azure credentials, read by the executor);
// imagePullSecrets the workflow's. What spec.templateDefaults
// contributes to a template of that type is added to it (a union, where
// the controller's strategic merge lets the template's list replace the
// default's: more Secrets, never fewer). The workflow's and the
// template's (else templateDefaults')
// podSpecPatch add their containers, initContainers,
// ephemeralContainers, volumes and imagePullSecrets. An http or plugin
// template is visited as the agent pod: the workflow's imagePullSecrets
// and spec.podSpecPatch only. steps, dag and suspend templates make no
// pod. volumeClaimTemplates name no Secret and are not read.
//
// When the spec runs templates it does not hold (workflowTemplateRef,
// or a templateRef anywhere), their pods take this spec's
// imagePullSecrets, volumes, podSpecPatch and templateDefaults too: what
// those hold is visited once more at the spec's path (".spec",
// ".spec.workflowSpec").
//
// Fields a corev1.Container lacks (script's source, mirrorVolumeMounts,
// dependencies) are dropped by the conversion; env, envFrom and volumes
// are kept whole. Of a podSpecPatch, a YAML or JSON string, what can
// name a Secret is read (imagePullSecrets, volumes, and the containers'
// name, env and envFrom), so that an expression elsewhere (resources,
// the common case) does not matter. Data of another shape than the
// types', a podSpecPatch that does not parse, or a Secret named by an
// expression the controller substitutes at run time ("{{...}}") is an
// error naming the object path: the object's readers are then not
// known. visit's error stops the walk and is returned.
func ArgoWorkflowPodSpecs(kind string, obj map[string]any, visit func(path string, spec *corev1.PodSpec) error) error {
	fields, ok := argoWorkflowKinds[kind]
	if !ok {
		return fmt.Errorf("%s is not a kind of Argo Workflows with templates (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow)", kind)
	}
	var v any = obj
	at := ""
	for _, f := range fields {
		m, err := argoObject(v, root(at))
		if err != nil || m == nil {
			return err
		}
		v, at = m[f], at+member(f)
	}
	spec, err := argoObject(v, at)
	if err != nil || spec == nil {
		return err
	}
	w := &argoWorkflow{at: at, visit: visit}
	if w.volumes, err = argoArray(spec["volumes"], at+".volumes"); err != nil {
		return err
	}
	if w.pullSecrets, err = argoArray(spec["imagePullSecrets"], at+".imagePullSecrets"); err != nil {
		return err
	}
	if w.patch, err = argoPatch(spec["podSpecPatch"], at+".podSpecPatch"); err != nil {
		return err
	}
	if w.defaults, err = argoObject(spec["templateDefaults"], at+".templateDefaults"); err != nil {
		return err
	}
	templates, err := argoArray(spec["templates"], at+".templates")
	if err != nil {
		return err
	}
	for i, t := range templates {
		if err := w.template(t, at+".templates["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	if spec["workflowTemplateRef"] != nil || hasTemplateRef(spec) {
		return w.foreign()
	}
	return nil
}

// argoWorkflow is what every pod of a WorkflowSpec takes from it.
type argoWorkflow struct {
	at          string
	visit       func(string, *corev1.PodSpec) error
	volumes     []any
	pullSecrets []any
	patch       *corev1.PodSpec
	defaults    map[string]any
}

// argoTemplateTypes are a template's kinds in Template.GetType's order:
// the first set is the template's type.
var argoTemplateTypes = []string{"container", "containerSet", "steps", "dag", "script", "resource", "data", "suspend", "http", "plugin"}

func argoTemplateType(t map[string]any) string {
	for _, k := range argoTemplateTypes {
		if t[k] != nil {
			return k
		}
	}
	return ""
}

// template visits the pod spec of the template t at at, then its inline
// templates.
func (w *argoWorkflow) template(v any, at string) error {
	t, err := argoObject(v, at)
	if err != nil || t == nil {
		return err
	}
	switch typ := argoTemplateType(t); typ {
	case "container", "script", "containerSet", "resource", "data":
		if err := w.templatePod(t, typ, at); err != nil {
			return err
		}
	case "http", "plugin":
		// createAgentPod: the agent pod takes the workflow's
		// imagePullSecrets and spec.podSpecPatch, nothing of the
		// template's.
		ps, err := w.podSpec(nil, nil, nil, at)
		if err != nil {
			return err
		}
		if err := w.finish(ps, at); err != nil {
			return err
		}
	case "steps":
		steps, err := argoArray(t["steps"], at+".steps")
		if err != nil {
			return err
		}
		for i, parallel := range steps {
			sat := at + ".steps[" + strconv.Itoa(i) + "]"
			l, err := argoArray(parallel, sat)
			if err != nil {
				return err
			}
			for j, step := range l {
				if err := w.inline(step, sat+"["+strconv.Itoa(j)+"]"); err != nil {
					return err
				}
			}
		}
	case "dag":
		dag, err := argoObject(t["dag"], at+".dag")
		if err != nil {
			return err
		}
		tasks, err := argoArray(dag["tasks"], at+".dag.tasks")
		if err != nil {
			return err
		}
		for i, task := range tasks {
			if err := w.inline(task, at+".dag.tasks["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// inline visits the inline template of a step or dag task.
func (w *argoWorkflow) inline(v any, at string) error {
	s, err := argoObject(v, at)
	if err != nil || s == nil {
		return err
	}
	return w.template(s["inline"], at+".inline")
}

// templatePod visits the pod of template t, of type typ (container,
// script, containerSet, resource or data).
func (w *argoWorkflow) templatePod(t map[string]any, typ, at string) error {
	d := w.defaults
	if d == nil {
		d = map[string]any{}
	}
	containers, initContainers, volumes := []any{}, []any{}, append([]any{}, w.volumes...)
	for _, src := range []struct {
		m  map[string]any
		at string
	}{{t, at}, {d, w.at + ".templateDefaults"}} {
		// The main containers: a resource or data template's is the
		// controller's (newExecContainer).
		switch typ {
		case "container", "script":
			if c := src.m[typ]; c != nil {
				containers = append(containers, c)
			}
		case "containerSet":
			cs, err := argoObject(src.m["containerSet"], src.at+".containerSet")
			if err != nil {
				return err
			}
			l, err := argoArray(cs["containers"], src.at+".containerSet.containers")
			if err != nil {
				return err
			}
			containers = append(containers, l...)
		}
		l, err := argoArray(src.m["sidecars"], src.at+".sidecars")
		if err != nil {
			return err
		}
		containers = append(containers, l...)
		if l, err = argoArray(src.m["initContainers"], src.at+".initContainers"); err != nil {
			return err
		}
		initContainers = append(initContainers, l...)
		if l, err = argoArray(src.m["volumes"], src.at+".volumes"); err != nil {
			return err
		}
		volumes = append(volumes, l...)
		if l, err = argoArtifactVolumes(src.m, src.at); err != nil {
			return err
		}
		volumes = append(volumes, l...)
	}
	ps, err := w.podSpec(containers, initContainers, volumes, at)
	if err != nil {
		return err
	}
	// The template's podSpecPatch, else templateDefaults' (a string:
	// the template's replaces the default's in the merge).
	patchAt, patch := at+".podSpecPatch", t["podSpecPatch"]
	if patch == nil || patch == "" {
		patchAt, patch = w.at+".templateDefaults.podSpecPatch", d["podSpecPatch"]
	}
	p, err := argoPatch(patch, patchAt)
	if err != nil {
		return err
	}
	addPatch(ps, p)
	return w.finish(ps, at)
}

// podSpec converts the data of a pod's containers, initContainers and
// volumes to a PodSpec with the workflow's imagePullSecrets and
// spec.podSpecPatch added.
func (w *argoWorkflow) podSpec(containers, initContainers, volumes []any, at string) (*corev1.PodSpec, error) {
	data := map[string]any{"containers": containers, "initContainers": initContainers, "volumes": volumes, "imagePullSecrets": w.pullSecrets}
	ps := &corev1.PodSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(data, ps); err != nil {
		return nil, fmt.Errorf("%s: not a template of containers and volumes: %w", at, err)
	}
	addPatch(ps, w.patch)
	return ps, nil
}

// foreign visits what the pods of templates the spec does not hold take
// from it: imagePullSecrets, volumes, podSpecPatch and every type's
// templateDefaults.
func (w *argoWorkflow) foreign() error {
	d := w.defaults
	if d == nil {
		d = map[string]any{}
	}
	at := w.at + ".templateDefaults"
	var containers []any
	for _, k := range []string{"container", "script"} {
		if c := d[k]; c != nil {
			containers = append(containers, c)
		}
	}
	cs, err := argoObject(d["containerSet"], at+".containerSet")
	if err != nil {
		return err
	}
	l, err := argoArray(cs["containers"], at+".containerSet.containers")
	if err != nil {
		return err
	}
	containers = append(containers, l...)
	lists := map[string][]any{}
	for _, k := range []string{"sidecars", "initContainers", "volumes"} {
		if lists[k], err = argoArray(d[k], at+"."+k); err != nil {
			return err
		}
	}
	containers = append(containers, lists["sidecars"]...)
	artifacts, err := argoArtifactVolumes(d, at)
	if err != nil {
		return err
	}
	volumes := append(append(append([]any{}, w.volumes...), lists["volumes"]...), artifacts...)
	ps, err := w.podSpec(containers, lists["initContainers"], volumes, w.at)
	if err != nil {
		return err
	}
	p, err := argoPatch(d["podSpecPatch"], at+".podSpecPatch")
	if err != nil {
		return err
	}
	addPatch(ps, p)
	return w.finish(ps, w.at)
}

// finish refuses a Secret named by an expression, which the controller
// substitutes at run time (workflow/common ProcessArgs,
// substitutePodParams): which Secret it is cannot be known here.
func (w *argoWorkflow) finish(ps *corev1.PodSpec, at string) error {
	var err error
	VisitSecretNames(ps, func(name, via string) {
		if err == nil && strings.Contains(name, "{{") {
			err = fmt.Errorf("%s: Secret %q (%s) is an expression Argo Workflows substitutes at run time", at, name, via)
		}
	})
	if err != nil {
		return err
	}
	return w.visit(at, ps)
}

// argoArtifactSecrets are where each kind of artifact location names a
// Secret (pkg/apis/workflow/v1alpha1/workflow_types.go: S3Artifact,
// GitArtifact, ...), as workflowpod.go
// createSecretVolumesFromArtifactLocations reads them. It reads one kind
// per location (the first set) and S3's customer key only with
// enableEncryption; all are read here.
var argoArtifactSecrets = map[string][][]string{
	"s3": {{"accessKeySecret"}, {"secretKeySecret"}, {"sessionTokenSecret"},
		{"encryptionOptions", "serverSideCustomerKeySecret"}, {"caSecret"}},
	"git":         {{"usernameSecret"}, {"passwordSecret"}, {"sshPrivateKeySecret"}},
	"artifactory": {{"usernameSecret"}, {"passwordSecret"}},
	"hdfs":        {{"krbCCacheSecret"}, {"krbKeytabSecret"}},
	"oss":         {{"accessKeySecret"}, {"secretKeySecret"}},
	"gcs":         {{"serviceAccountKeySecret"}},
	"http": {{"auth", "basicAuth", "usernameSecret"}, {"auth", "basicAuth", "passwordSecret"},
		{"auth", "clientCert", "clientCertSecret"}, {"auth", "clientCert", "clientKeySecret"},
		{"auth", "oauth2", "clientIDSecret"}, {"auth", "oauth2", "clientSecretSecret"}, {"auth", "oauth2", "tokenURLSecret"}},
	"azure": {{"accountKeySecret"}},
}

// argoArtifactVolumes are the secret volumes the pod of template t gets
// for the Secrets its artifacts' locations name: workflowpod.go
// addVolumeReferences adds those of createSecretVolumesAndMounts, from
// the template's archiveLocation, outputs.artifacts, inputs.artifacts and
// data.source.artifactPaths, for the executor's containers to read.
func argoArtifactVolumes(t map[string]any, at string) ([]any, error) {
	type location struct {
		v  any
		at string
	}
	locations := []location{{t["archiveLocation"], at + ".archiveLocation"}}
	for _, k := range []string{"outputs", "inputs"} {
		io, err := argoObject(t[k], at+"."+k)
		if err != nil {
			return nil, err
		}
		arts, err := argoArray(io["artifacts"], at+"."+k+".artifacts")
		if err != nil {
			return nil, err
		}
		for i, a := range arts {
			locations = append(locations, location{a, at + "." + k + ".artifacts[" + strconv.Itoa(i) + "]"})
		}
	}
	data, err := argoObject(t["data"], at+".data")
	if err != nil {
		return nil, err
	}
	source, err := argoObject(data["source"], at+".data.source")
	if err != nil {
		return nil, err
	}
	locations = append(locations, location{source["artifactPaths"], at + ".data.source.artifactPaths"})
	var volumes []any
	seen := map[string]bool{}
	for _, l := range locations {
		loc, err := argoObject(l.v, l.at)
		if err != nil {
			return nil, err
		}
		for _, kind := range sortedKeys(argoArtifactSecrets) {
			for _, path := range argoArtifactSecrets[kind] {
				v, vat := loc[kind], l.at+"."+kind
				for _, f := range path {
					m, err := argoObject(v, vat)
					if err != nil {
						return nil, err
					}
					v, vat = m[f], vat+"."+f
				}
				sel, err := argoObject(v, vat)
				if err != nil {
					return nil, err
				}
				if name, _ := sel["name"].(string); name != "" && !seen[name] {
					seen[name] = true
					volumes = append(volumes, map[string]any{"name": "artifact-" + name, "secret": map[string]any{"secretName": name}})
				}
			}
		}
	}
	return volumes, nil
}

// argoPatch reads a podSpecPatch: what of it can name a Secret
// (imagePullSecrets, volumes, and the containers' name, env and
// envFrom), as a PodSpec; nil if there is none.
func argoPatch(v any, at string) (*corev1.PodSpec, error) {
	if v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%s: %T, not a string", at, v)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("%s: not a pod spec: %w", at, err)
	}
	kept := map[string]any{}
	for _, k := range []string{"imagePullSecrets", "volumes"} {
		if m[k] != nil {
			kept[k] = m[k]
		}
	}
	for _, k := range []string{"containers", "initContainers", "ephemeralContainers"} {
		l, err := argoArray(m[k], at+"."+k)
		if err != nil {
			return nil, err
		}
		var cs []any
		for i, c := range l {
			c, err := argoObject(c, at+"."+k+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			cs = append(cs, map[string]any{"name": c["name"], "env": c["env"], "envFrom": c["envFrom"]})
		}
		if cs != nil {
			kept[k] = cs
		}
	}
	ps := &corev1.PodSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(kept, ps); err != nil {
		return nil, fmt.Errorf("%s: not a pod spec: %w", at, err)
	}
	return ps, nil
}

// addPatch adds what patch names to ps: the strategic merge of
// ApplyPodSpecPatch merges its containers into ps's by name and adds
// its volumes and imagePullSecrets; listing them beside ps's reads the
// same Secrets.
func addPatch(ps, patch *corev1.PodSpec) {
	if patch == nil {
		return
	}
	ps.Containers = append(ps.Containers, patch.Containers...)
	ps.InitContainers = append(ps.InitContainers, patch.InitContainers...)
	ps.EphemeralContainers = append(ps.EphemeralContainers, patch.EphemeralContainers...)
	ps.Volumes = append(ps.Volumes, patch.Volumes...)
	ps.ImagePullSecrets = append(ps.ImagePullSecrets, patch.ImagePullSecrets...)
}

// hasTemplateRef says whether a templateRef is anywhere in v: a step, a
// dag task or a lifecycle hook that runs a WorkflowTemplate's or
// ClusterWorkflowTemplate's template.
func hasTemplateRef(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if v["templateRef"] != nil {
			return true
		}
		for _, x := range v {
			if hasTemplateRef(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasTemplateRef(x) {
				return true
			}
		}
	}
	return false
}

// argoObject is v as an object: nil if absent or null, an error if of
// another type.
func argoObject(v any, at string) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: %T, not an object", at, v)
	}
	return m, nil
}

// argoArray is v as an array: nil if absent or null, an error if of
// another type.
func argoArray(v any, at string) ([]any, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: %T, not an array", at, v)
	}
	return l, nil
}
