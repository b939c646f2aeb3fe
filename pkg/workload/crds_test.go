package workload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"
)

// moduleDir is the folder of module@version in the module cache
// (test/modcache holds the pins and fetches them).
func moduleDir(t *testing.T, path, version string) string {
	t.Helper()
	dir, err := modcache.Dir(path, version)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// crdFile is a published CRD manifest: file inside module@version.
type crdFile struct{ module, version, file string }

var (
	rolloutCRD        = crdFile{modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/rollout-crd.yaml"}
	knativeServiceCRD = crdFile{modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/service.yaml"}
	knativeRevCRD     = crdFile{modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/revision.yaml"}
	knativeRouteCRD   = crdFile{modcache.KnativeServing, modcache.KnativeServingVersion, "config/core/300-resources/route.yaml"}
	scaledJobCRD      = crdFile{modcache.KEDA, modcache.KEDAVersion, "config/crd/bases/keda.sh_scaledjobs.yaml"}
	scaledObjectCRD   = crdFile{modcache.KEDA, modcache.KEDAVersion, "config/crd/bases/keda.sh_scaledobjects.yaml"}
	tfJobCRD          = crdFile{modcache.KubeflowTraining, modcache.KubeflowTrainingVersion, "manifests/base/crds/kubeflow.org_tfjobs.yaml"}
	experimentCRD     = crdFile{modcache.ArgoRollouts, modcache.ArgoRolloutsVersion, "manifests/crds/experiment-crd.yaml"}
	workflowCRD       = crdFile{modcache.ArgoWorkflows, modcache.ArgoWorkflowsVersion, "manifests/base/crds/minimal/argoproj.io_workflows.yaml"}
)

// readModuleFile reads file inside module@version.
func readModuleFile(t *testing.T, f crdFile) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleDir(t, f.module, f.version), filepath.FromSlash(f.file)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readExample reads the first object of a published example manifest.
func readExample(t *testing.T, f crdFile) map[string]any {
	t.Helper()
	doc, _, _ := strings.Cut(string(readModuleFile(t, f)), "\n---\n")
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatalf("%s: %v", f.file, err)
	}
	return obj
}

// crd is what the tests read of a CustomResourceDefinition.
type crd struct {
	Spec struct {
		Group string
		Names struct{ Kind, Plural string }
		Scope string
		// Versions' schemas are apiextensions/v1 JSONSchemaProps;
		// their JSON is OpenAPI v3's, read here as kube-openapi's
		// spec.Schema as the apiserver publishes it in /openapi/v3.
		Versions []struct {
			Name    string
			Served  bool
			Storage bool
			Schema  struct {
				OpenAPIV3Schema *spec.Schema `json:"openAPIV3Schema"`
			}
		}
	}
}

// readCRD reads the published CRD and returns it with the schema of its
// storage version.
func readCRD(t *testing.T, f crdFile) (*crd, *spec.Schema) {
	t.Helper()
	file := f.module + "@" + f.version + "/" + f.file
	b := readModuleFile(t, f)
	c := &crd{}
	if err := yaml.Unmarshal(b, c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, v := range c.Spec.Versions {
		if v.Storage {
			if v.Schema.OpenAPIV3Schema == nil {
				t.Fatalf("%s: version %s has no schema", file, v.Name)
			}
			return c, v.Schema.OpenAPIV3Schema
		}
	}
	t.Fatalf("%s: no storage version", file)
	return nil, nil
}
