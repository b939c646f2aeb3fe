package workload

import (
	"errors"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// argoSecrets runs ArgoWorkflowPodSpecs and returns the Secrets each
// visited pod spec reads and every path visited.
func argoSecrets(t *testing.T, kind string, obj map[string]any) ([]visited, []string) {
	t.Helper()
	secrets, paths := []visited{}, []string{}
	if err := ArgoWorkflowPodSpecs(kind, obj, func(path string, ps *corev1.PodSpec) error {
		paths = append(paths, path)
		VisitSecretNames(ps, func(name, via string) { secrets = append(secrets, visited{path, name, via}) })
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return secrets, paths
}

// argoExample reads the first object of an Argo Workflows example.
func argoExample(t *testing.T, file string) map[string]any {
	t.Helper()
	return readExample(t, crdFile{modcache.ArgoWorkflows, modcache.ArgoWorkflowsVersion, "examples/" + file})
}

// at walks the data of obj along keys (strings) and indexes (ints).
func at(obj any, steps ...any) map[string]any {
	for _, s := range steps {
		switch s := s.(type) {
		case string:
			obj = obj.(map[string]any)[s]
		case int:
			obj = obj.([]any)[s]
		}
	}
	return obj.(map[string]any)
}

// secretEnv is an env list reading key of Secret name.
func secretEnv(name string) []any {
	return []any{map[string]any{"name": "X", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": name, "key": "k"}}}}
}

func secretVolume(vol, name string) map[string]any {
	return map[string]any{"name": vol, "secret": map[string]any{"secretName": name}}
}

// TestArgoWorkflowPodSpecsExamples reads Argo Workflows' own examples:
// those that name Secrets as they are, and others, each of a way to make
// a pod (init containers, sidecars, a container set, a script, inline
// templates, a resource or http template, templateDefaults, a
// workflowTemplateRef, a CronWorkflow, a WorkflowTemplate, a
// ClusterWorkflowTemplate), with a Secret added where a user would.
func TestArgoWorkflowPodSpecsExamples(t *testing.T) {
	for name, c := range map[string]struct {
		file, kind string
		edit       func(obj map[string]any)
		want       []visited
		paths      []string
	}{
		"secrets": {file: "secrets.yaml", kind: "Workflow",
			want:  []visited{{".spec.templates[0]", "my-secret", "env"}, {".spec.templates[0]", "my-secret", "volume"}},
			paths: []string{".spec.templates[0]"}},
		"image pull secrets": {file: "image-pull-secrets.yaml", kind: "Workflow",
			want:  []visited{{".spec.templates[0]", "docker-registry-secret", "imagePullSecrets"}},
			paths: []string{".spec.templates[0]"}},
		// A template's own volumes; the dag template makes no pod.
		"buildkit workflow template": {file: "buildkit-template.yaml", kind: "WorkflowTemplate",
			want:  []visited{{".spec.templates[3]", "docker-config", "volume"}},
			paths: []string{".spec.templates[1]", ".spec.templates[2]", ".spec.templates[3]"}},
		"init container": {file: "init-container.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0, "initContainers", 0)["envFrom"] = []any{map[string]any{"secretRef": map[string]any{"name": "init-creds"}}}
			},
			want:  []visited{{".spec.templates[0]", "init-creds", "envFrom"}},
			paths: []string{".spec.templates[0]"}},
		"sidecar": {file: "sidecar.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0, "sidecars", 0)["env"] = secretEnv("influx-creds")
			},
			want:  []visited{{".spec.templates[0]", "influx-creds", "env"}},
			paths: []string{".spec.templates[0]"}},
		"container set": {file: "container-set-template/graph-workflow.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0, "containerSet", "containers", 3)["env"] = secretEnv("d-creds")
			},
			want:  []visited{{".spec.templates[0]", "d-creds", "env"}},
			paths: []string{".spec.templates[0]"}},
		// A script holds source, which a Container has not.
		"script": {file: "scripts-bash.yaml", kind: "Workflow",
			edit:  func(obj map[string]any) { at(obj, "spec", "templates", 1, "script")["env"] = secretEnv("script-creds") },
			want:  []visited{{".spec.templates[1]", "script-creds", "env"}},
			paths: []string{".spec.templates[1]", ".spec.templates[2]"}},
		"steps inline": {file: "steps-inline-workflow.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0, "steps", 0, 0, "inline", "container")["env"] = secretEnv("inline-creds")
			},
			want:  []visited{{".spec.templates[0].steps[0][0].inline", "inline-creds", "env"}},
			paths: []string{".spec.templates[0].steps[0][0].inline"}},
		"dag inline": {file: "dag-inline-workflow.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0, "dag", "tasks", 0, "inline")["volumes"] = []any{secretVolume("v", "inline-vol")}
			},
			want:  []visited{{".spec.templates[0].dag.tasks[0].inline", "inline-vol", "volume"}},
			paths: []string{".spec.templates[0].dag.tasks[0].inline"}},
		// A resource template's pod has the user's volumes and sidecars
		// beside the controller's argoexec.
		"resource": {file: "k8s-jobs.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0)["volumes"] = []any{secretVolume("kubeconfig", "job-kubeconfig")}
			},
			want:  []visited{{".spec.templates[0]", "job-kubeconfig", "volume"}},
			paths: []string{".spec.templates[0]"}},
		// The agent pod of an http template takes the workflow's
		// imagePullSecrets.
		"http": {file: "http-hello-world.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec")["imagePullSecrets"] = []any{map[string]any{"name": "agent-pull"}}
			},
			want:  []visited{{".spec.templates[1]", "agent-pull", "imagePullSecrets"}},
			paths: []string{".spec.templates[1]"}},
		// templateDefaults' container reaches the container templates,
		// not the steps template.
		"template defaults": {file: "template-defaults.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templateDefaults")["container"] = map[string]any{"env": secretEnv("default-creds")}
			},
			want:  []visited{{".spec.templates[1]", "default-creds", "env"}, {".spec.templates[2]", "default-creds", "env"}},
			paths: []string{".spec.templates[1]", ".spec.templates[2]"}},
		// The resources' expression in the patch does not matter.
		"pod spec patch": {file: "pod-spec-yaml-patch.yaml", kind: "Workflow",
			want: []visited{}, paths: []string{".spec.templates[0]"}},
		"pod spec patch, template's and workflow's": {file: "pod-spec-patch-wf-tmpl.yaml", kind: "Workflow",
			want: []visited{}, paths: []string{".spec.templates[0]"}},
		// The Secrets of artifacts' locations are mounted for the
		// executor, once per Secret.
		"input artifact s3": {file: "input-artifact-s3.yaml", kind: "Workflow",
			want:  []visited{{".spec.templates[0]", "my-s3-credentials", "volume"}},
			paths: []string{".spec.templates[0]"}},
		"output artifact s3": {file: "output-artifact-s3.yaml", kind: "Workflow",
			want:  []visited{{".spec.templates[0]", "my-s3-credentials", "volume"}},
			paths: []string{".spec.templates[0]"}},
		"input artifact gcs": {file: "input-artifact-gcs.yaml", kind: "Workflow",
			want:  []visited{{".spec.templates[0]", "my-gcs-credentials", "volume"}},
			paths: []string{".spec.templates[0]"}},
		"input artifact azure": {file: "input-artifact-azure.yaml", kind: "Workflow",
			want:  []visited{{".spec.templates[0]", "my-azure-credentials", "volume"}},
			paths: []string{".spec.templates[0]"}},
		// A Workflow made from a WorkflowTemplate: its pods take its
		// imagePullSecrets.
		"workflow template ref": {file: "workflow-template/workflow-template-ref.yaml", kind: "Workflow",
			edit: func(obj map[string]any) {
				at(obj, "spec")["imagePullSecrets"] = []any{map[string]any{"name": "ref-pull"}}
			},
			want:  []visited{{".spec", "ref-pull", "imagePullSecrets"}},
			paths: []string{".spec"}},
		"cron workflow": {file: "cron-workflow.yaml", kind: "CronWorkflow",
			edit: func(obj map[string]any) {
				at(obj, "spec", "workflowSpec")["volumes"] = []any{secretVolume("v", "cron-vol")}
			},
			want:  []visited{{".spec.workflowSpec.templates[0]", "cron-vol", "volume"}},
			paths: []string{".spec.workflowSpec.templates[0]"}},
		"workflow template": {file: "workflow-template/templates.yaml", kind: "WorkflowTemplate",
			edit: func(obj map[string]any) {
				at(obj, "spec")["imagePullSecrets"] = []any{map[string]any{"name": "tmpl-pull"}}
			},
			want:  []visited{{".spec.templates[0]", "tmpl-pull", "imagePullSecrets"}},
			paths: []string{".spec.templates[0]"}},
		"cluster workflow template": {file: "cluster-workflow-template/clustertemplates.yaml", kind: "ClusterWorkflowTemplate",
			edit: func(obj map[string]any) {
				at(obj, "spec", "templates", 0, "container")["env"] = secretEnv("cluster-creds")
			},
			want:  []visited{{".spec.templates[0]", "cluster-creds", "env"}},
			paths: []string{".spec.templates[0]"}},
	} {
		t.Run(name, func(t *testing.T) {
			obj := argoExample(t, c.file)
			if got := obj["kind"]; got != c.kind {
				t.Fatalf("%s is a %v, want %s", c.file, got, c.kind)
			}
			if c.edit != nil {
				c.edit(obj)
			}
			secrets, paths := argoSecrets(t, c.kind, obj)
			if diff := cmp.Diff(c.want, secrets, cmp.AllowUnexported(visited{})); diff != "" {
				t.Errorf("secrets (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.paths, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

// argoObj parses a small Argo Workflows object written as YAML.
func argoObj(t *testing.T, s string) map[string]any {
	t.Helper()
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestArgoWorkflowPodSpecsFields reads each field through which an Argo
// Workflows template's pod reads a Secret, one case each; each case
// fails if that field's handling is left out (checked once by
// commenting each out).
func TestArgoWorkflowPodSpecsFields(t *testing.T) {
	for name, c := range map[string]struct {
		kind, obj string
		want      []visited
	}{
		"container env": {"Workflow", `
spec:
  templates:
  - container: {image: a, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}`,
			[]visited{{".spec.templates[0]", "s", "env"}}},
		"container envFrom": {"Workflow", `
spec:
  templates:
  - container: {image: a, envFrom: [{secretRef: {name: s}}]}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"script, with its source": {"Workflow", `
spec:
  templates:
  - script: {image: a, source: "echo", envFrom: [{secretRef: {name: s}}]}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"containerSet containers": {"Workflow", `
spec:
  templates:
  - containerSet:
      containers:
      - {name: a, image: a}
      - {name: b, image: b, dependencies: [a], envFrom: [{secretRef: {name: s}}]}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"initContainers, with mirrorVolumeMounts": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    initContainers: [{name: i, image: i, mirrorVolumeMounts: true, envFrom: [{secretRef: {name: s}}]}]`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"sidecars": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    sidecars: [{name: i, image: i, envFrom: [{secretRef: {name: s}}]}]`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"spec.volumes, in every pod's template": {"Workflow", `
spec:
  volumes: [{name: v, projected: {sources: [{secret: {name: s}}]}}]
  templates:
  - container: {image: a}
  - script: {image: a}`,
			[]visited{{".spec.templates[0]", "s", "projected"}, {".spec.templates[1]", "s", "projected"}}},
		"template volumes": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    volumes: [{name: v, csi: {driver: d, nodePublishSecretRef: {name: s}}}]`,
			[]visited{{".spec.templates[0]", "s", "csi"}}},
		"spec.imagePullSecrets": {"Workflow", `
spec:
  imagePullSecrets: [{name: s}]
  templates:
  - container: {image: a}`,
			[]visited{{".spec.templates[0]", "s", "imagePullSecrets"}}},
		// Of templateDefaults, container reaches container templates
		// only, script script templates, containerSet containerSet
		// templates; the rest every template that makes a pod.
		"templateDefaults.container": {"Workflow", `
spec:
  templateDefaults:
    container: {envFrom: [{secretRef: {name: s}}]}
  templates:
  - container: {image: a}
  - script: {image: a}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"templateDefaults.script": {"Workflow", `
spec:
  templateDefaults:
    script: {envFrom: [{secretRef: {name: s}}]}
  templates:
  - container: {image: a}
  - script: {image: a}`,
			[]visited{{".spec.templates[1]", "s", "envFrom"}}},
		"templateDefaults.containerSet": {"Workflow", `
spec:
  templateDefaults:
    containerSet: {containers: [{name: a, envFrom: [{secretRef: {name: s}}]}]}
  templates:
  - container: {image: a}
  - containerSet: {containers: [{name: a, image: a}]}`,
			[]visited{{".spec.templates[1]", "s", "envFrom"}}},
		"templateDefaults.initContainers": {"Workflow", `
spec:
  templateDefaults:
    initContainers: [{name: i, envFrom: [{secretRef: {name: s}}]}]
  templates:
  - container: {image: a}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"templateDefaults.sidecars": {"Workflow", `
spec:
  templateDefaults:
    sidecars: [{name: i, envFrom: [{secretRef: {name: s}}]}]
  templates:
  - resource: {action: create}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		"templateDefaults.volumes": {"Workflow", `
spec:
  templateDefaults:
    volumes: [{name: v, secret: {secretName: s}}]
  templates:
  - container: {image: a}`,
			[]visited{{".spec.templates[0]", "s", "volume"}}},
		"templateDefaults.podSpecPatch, where the template has none": {"Workflow", `
spec:
  templateDefaults:
    podSpecPatch: '{"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}'
  templates:
  - container: {image: a}
  - container: {image: a}
    podSpecPatch: '{"volumes": [{"name": "v", "secret": {"secretName": "t"}}]}'`,
			[]visited{{".spec.templates[0]", "s", "volume"}, {".spec.templates[1]", "t", "volume"}}},
		// YAML, an env of a container merged by name, with an
		// expression where no Secret is named.
		"spec.podSpecPatch": {"Workflow", `
spec:
  podSpecPatch: |
    containers:
    - name: main
      resources: {limits: {memory: "{{workflow.parameters.mem}}"}}
      env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]
  templates:
  - container: {image: a}`,
			[]visited{{".spec.templates[0]", "s", "env"}}},
		"template podSpecPatch": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    podSpecPatch: |
      {"imagePullSecrets": [{"name": "p"}],
       "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "i"}}]}],
       "ephemeralContainers": [{"name": "e", "envFrom": [{"secretRef": {"name": "e"}}]}],
       "volumes": [{"name": "v", "azureFile": {"secretName": "v", "shareName": "x"}}]}`,
			[]visited{{".spec.templates[0]", "p", "imagePullSecrets"}, {".spec.templates[0]", "i", "envFrom"},
				{".spec.templates[0]", "e", "envFrom"}, {".spec.templates[0]", "v", "azureFile"}}},
		// workflowpod.go createSecretVolumesAndMounts: every kind of
		// location, in inputs, outputs, archiveLocation and a data
		// template's source; templateDefaults' too.
		"artifact locations": {"Workflow", `
spec:
  templateDefaults:
    archiveLocation: {oss: {accessKeySecret: {name: d1, key: k}}}
  templates:
  - container: {image: a}
    archiveLocation: {git: {usernameSecret: {name: g1, key: k}, passwordSecret: {name: g2, key: k}, sshPrivateKeySecret: {name: g3, key: k}}}
    inputs:
      artifacts:
      - {name: a, s3: {accessKeySecret: {name: s1, key: k}, secretKeySecret: {name: s2, key: k}, sessionTokenSecret: {name: s3, key: k},
          encryptionOptions: {enableEncryption: true, serverSideCustomerKeySecret: {name: s4, key: k}}, caSecret: {name: s5, key: k}}}
      - {name: b, artifactory: {usernameSecret: {name: a1, key: k}, passwordSecret: {name: a2, key: k}}}
      - {name: c, hdfs: {krbCCacheSecret: {name: h1, key: k}, krbKeytabSecret: {name: h2, key: k}}}
      - {name: d, from: "{{steps.x.outputs.artifacts.y}}"}
    outputs:
      artifacts:
      - {name: e, oss: {accessKeySecret: {name: o1, key: k}, secretKeySecret: {name: o2, key: k}}}
      - {name: f, gcs: {serviceAccountKeySecret: {name: c1, key: k}}}
      - {name: g, azure: {accountKeySecret: {name: z1, key: k}}}
      - name: h
        http:
          auth:
            basicAuth: {usernameSecret: {name: t1, key: k}, passwordSecret: {name: t2, key: k}}
            clientCert: {clientCertSecret: {name: t3, key: k}, clientKeySecret: {name: t4, key: k}}
            oauth2: {clientIDSecret: {name: t5, key: k}, clientSecretSecret: {name: t6, key: k}, tokenURLSecret: {name: t7, key: k}}
  - data:
      source: {artifactPaths: {name: p, s3: {accessKeySecret: {name: p1, key: k}}}}
      transformation: []`,
			[]visited{
				{".spec.templates[0]", "g1", "volume"}, {".spec.templates[0]", "g2", "volume"}, {".spec.templates[0]", "g3", "volume"},
				{".spec.templates[0]", "o1", "volume"}, {".spec.templates[0]", "o2", "volume"}, {".spec.templates[0]", "c1", "volume"},
				{".spec.templates[0]", "z1", "volume"}, {".spec.templates[0]", "t1", "volume"}, {".spec.templates[0]", "t2", "volume"},
				{".spec.templates[0]", "t3", "volume"}, {".spec.templates[0]", "t4", "volume"}, {".spec.templates[0]", "t5", "volume"},
				{".spec.templates[0]", "t6", "volume"}, {".spec.templates[0]", "t7", "volume"},
				{".spec.templates[0]", "s1", "volume"}, {".spec.templates[0]", "s2", "volume"}, {".spec.templates[0]", "s3", "volume"},
				{".spec.templates[0]", "s4", "volume"}, {".spec.templates[0]", "s5", "volume"},
				{".spec.templates[0]", "a1", "volume"}, {".spec.templates[0]", "a2", "volume"},
				{".spec.templates[0]", "h1", "volume"}, {".spec.templates[0]", "h2", "volume"},
				{".spec.templates[0]", "d1", "volume"},
				{".spec.templates[1]", "p1", "volume"}, {".spec.templates[1]", "d1", "volume"},
			}},
		"resource template: volumes, initContainers": {"Workflow", `
spec:
  templates:
  - resource: {action: create, manifest: "kind: ConfigMap"}
    volumes: [{name: v, secret: {secretName: s}}]
    initContainers: [{name: i, image: i, envFrom: [{secretRef: {name: t}}]}]`,
			[]visited{{".spec.templates[0]", "t", "envFrom"}, {".spec.templates[0]", "s", "volume"}}},
		"data template": {"Workflow", `
spec:
  templates:
  - data: {source: {artifactPaths: {name: a}}, transformation: []}
    sidecars: [{name: i, image: i, envFrom: [{secretRef: {name: s}}]}]`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
		// The agent pod: imagePullSecrets and spec.podSpecPatch, not the
		// template's volumes, sidecars or podSpecPatch.
		"http template": {"Workflow", `
spec:
  imagePullSecrets: [{name: p}]
  podSpecPatch: '{"volumes": [{"name": "v", "secret": {"secretName": "w"}}]}'
  templates:
  - http: {url: "https://example.com"}
    volumes: [{name: v, secret: {secretName: no}}]
    sidecars: [{name: i, image: i, envFrom: [{secretRef: {name: no}}]}]
    podSpecPatch: '{"volumes": [{"name": "v", "secret": {"secretName": "no"}}]}'`,
			[]visited{{".spec.templates[0]", "p", "imagePullSecrets"}, {".spec.templates[0]", "w", "volume"}}},
		"plugin template": {"Workflow", `
spec:
  imagePullSecrets: [{name: p}]
  templates:
  - plugin: {hello: {}}
    volumes: [{name: v, secret: {secretName: no}}]`,
			[]visited{{".spec.templates[0]", "p", "imagePullSecrets"}}},
		"steps, suspend, volumeClaimTemplates and status make no reader": {"Workflow", `
spec:
  volumeClaimTemplates: [{metadata: {name: w}, spec: {dataSource: {kind: Secret, name: no}}}]
  templates:
  - steps: [[{name: a, template: b}]]
    volumes: [{name: v, secret: {secretName: no}}]
  - suspend: {}
    volumes: [{name: v, secret: {secretName: no}}]
status:
  storedTemplates:
    x: {container: {image: a, envFrom: [{secretRef: {name: no}}]}}
  storedWorkflowTemplateSpec:
    templates: [{container: {image: a, envFrom: [{secretRef: {name: no}}]}}]`,
			[]visited{}},
		"nested inline templates": {"Workflow", `
spec:
  templates:
  - steps:
    - - name: a
        inline:
          dag:
            tasks:
            - name: b
              inline: {container: {image: a, envFrom: [{secretRef: {name: s}}]}}`,
			[]visited{{".spec.templates[0].steps[0][0].inline.dag.tasks[0].inline", "s", "envFrom"}}},
		"CronWorkflow's workflowSpec": {"CronWorkflow", `
spec:
  workflowSpec:
    imagePullSecrets: [{name: s}]
    templates:
    - container: {image: a}`,
			[]visited{{".spec.workflowSpec.templates[0]", "s", "imagePullSecrets"}}},
		// Templates of other objects run with this spec's
		// imagePullSecrets, volumes, podSpecPatch and templateDefaults.
		"workflowTemplateRef": {"Workflow", `
spec:
  workflowTemplateRef: {name: t}
  podSpecPatch: '{"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}'`,
			[]visited{{".spec", "s", "volume"}}},
		"templateRef": {"WorkflowTemplate", `
spec:
  volumes: [{name: v, secret: {secretName: v}}]
  templateDefaults:
    container: {envFrom: [{secretRef: {name: c}}]}
    sidecars: [{name: i, envFrom: [{secretRef: {name: i}}]}]
    archiveLocation: {s3: {accessKeySecret: {name: a, key: k}}}
  templates:
  - dag:
      tasks:
      - {name: a, templateRef: {name: other, template: b}}`,
			[]visited{{".spec", "c", "envFrom"}, {".spec", "i", "envFrom"}, {".spec", "v", "volume"}, {".spec", "a", "volume"}}},
		"ClusterWorkflowTemplate": {"ClusterWorkflowTemplate", `
spec:
  templates:
  - container: {image: a, envFrom: [{secretRef: {name: s}}]}`,
			[]visited{{".spec.templates[0]", "s", "envFrom"}}},
	} {
		t.Run(name, func(t *testing.T) {
			got, _ := argoSecrets(t, c.kind, argoObj(t, c.obj))
			if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(visited{})); diff != "" {
				t.Errorf("secrets (-want +got):\n%s", diff)
			}
		})
	}
}

// TestArgoWorkflowPodSpecsErrors: what cannot be read makes the object's
// readers unknown, with the path it is at.
func TestArgoWorkflowPodSpecsErrors(t *testing.T) {
	for name, c := range map[string]struct {
		kind, obj, want string
	}{
		"unknown kind": {"Rollout", `spec: {templates: []}`, "Rollout is not a kind of Argo Workflows"},
		"template podSpecPatch, {{}}": {"Workflow", `
spec:
  templates:
  - container: {image: a}
  - container: {image: a}
    podSpecPatch: '{{inputs.parameters.patch}}'`, ".spec.templates[1].podSpecPatch: not a pod spec"},
		"spec.podSpecPatch, not a map": {"CronWorkflow", `
spec:
  workflowSpec:
    podSpecPatch: '[a]'
    templates: [{container: {image: a}}]`, ".spec.workflowSpec.podSpecPatch: not a pod spec"},
		"templateDefaults.podSpecPatch, a volume of another shape": {"Workflow", `
spec:
  templateDefaults:
    podSpecPatch: '{"volumes": {"v": {}}}'
  templates: [{container: {image: a}}]`, ".spec.templateDefaults.podSpecPatch: not a pod spec"},
		"a Secret named by an expression in a patch": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    podSpecPatch: '{"volumes": [{"name": "v", "secret": {"secretName": "{{inputs.parameters.s}}"}}]}'`,
			`.spec.templates[0]: Secret "{{inputs.parameters.s}}" (volume) is an expression`},
		"a Secret named by an expression": {"Workflow", `
spec:
  templates:
  - container: {image: a, env: [{name: X, valueFrom: {secretKeyRef: {name: "{{workflow.parameters.s}}", key: k}}}]}`,
			`.spec.templates[0]: Secret "{{workflow.parameters.s}}" (env) is an expression`},
		"artifacts not an array": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    outputs: {artifacts: {a: {}}}`, ".spec.templates[0].outputs.artifacts: map[string]interface {}, not an array"},
		"an artifact's Secret of another shape": {"Workflow", `
spec:
  templates:
  - container: {image: a}
    inputs: {artifacts: [{name: a, s3: {accessKeySecret: s}}]}`, ".spec.templates[0].inputs.artifacts[0].s3.accessKeySecret: string, not an object"},
		"templates not an array": {"Workflow", `spec: {templates: {a: 1}}`, ".spec.templates: map[string]interface {}, not an array"},
		"a container of another shape": {"Workflow", `
spec:
  templates:
  - name: a
  - container: {image: a, env: {X: "1"}}`, ".spec.templates[1]: not a template of containers and volumes"},
		"steps of another shape": {"Workflow", `
spec:
  templates:
  - steps: [{name: a}]`, ".spec.templates[0].steps[0]: map[string]interface {}, not an array"},
		"workflowSpec not an object": {"CronWorkflow", `spec: {workflowSpec: []}`, ".spec.workflowSpec: []interface {}, not an object"},
	} {
		t.Run(name, func(t *testing.T) {
			err := ArgoWorkflowPodSpecs(c.kind, argoObj(t, c.obj), func(string, *corev1.PodSpec) error { return nil })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}

	// visit's error stops the walk.
	stop := errors.New("stop")
	calls := 0
	obj := argoObj(t, `spec: {templates: [{container: {image: a}}, {container: {image: b}}]}`)
	if err := ArgoWorkflowPodSpecs("Workflow", obj, func(string, *corev1.PodSpec) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("visit's error: %d calls, err %v", calls, err)
	}

	// No spec, no templates: nothing, no error.
	for _, obj := range []map[string]any{{}, {"spec": map[string]any{}}, {"spec": map[string]any{"workflowSpec": nil}}} {
		if err := ArgoWorkflowPodSpecs("CronWorkflow", obj, func(string, *corev1.PodSpec) error { t.Error("visited"); return nil }); err != nil {
			t.Errorf("%v: %v", obj, err)
		}
	}
}
