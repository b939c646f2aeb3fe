package workload

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"
)

// The published CRDs the shape tests read, from their projects' modules
// at these versions. This is the only place the versions are written
// down; go.mod requires none of these modules (nothing here imports
// them): each is fetched on its own into the module cache, through
// GOPROXY and checked against GOSUMDB, by moduleDir, as
// test/e2e/framework/openshiftapi.go does for OpenShift's CRDs.
const (
	// Argo Rollouts v1.10.1 (v1.10.2 needs Go 1.26.10): manifests/crds.
	rolloutsModule, rolloutsVersion = "github.com/argoproj/argo-rollouts", "v1.10.1"
	// Knative Serving v0.51.0: config/core/300-resources.
	servingModule, servingVersion = "knative.dev/serving", "v0.51.0"
	// KEDA v2.20.2 (v2.21 needs Go 1.27): config/crd/bases.
	kedaModule, kedaVersion = "github.com/kedacore/keda/v2", "v2.20.2"
	// Kubeflow Training Operator v1.8.1, the newest the proxy lists:
	// manifests/base/crds. Its jobs keep pod templates in maps.
	kubeflowModule, kubeflowVersion = "github.com/kubeflow/training-operator", "v1.8.1"
	// Argo Workflows v4.0.5: manifests/base/crds/minimal, whose spec is
	// x-kubernetes-preserve-unknown-fields. Only its YAML is read: no
	// code of it is built (security flaws are reported for v4.0.5's
	// code, none of which runs here).
	workflowsModule, workflowsVersion = "github.com/argoproj/argo-workflows/v4", "v4.0.5"
	// Kubernetes v1.37.2, the release of go.mod's k8s.io/api v0.37.2:
	// api/openapi-spec/v3 is what its kube-apiserver serves at
	// /openapi/v3 (hack/update-openapi-spec.sh writes it from a running
	// apiserver).
	kubernetesModule, kubernetesVersion = "k8s.io/kubernetes", "v1.37.2"
)

var testModules sync.Map // module@version -> func() (string, error)

// moduleDir downloads path@version into the module cache once per test
// process and returns its folder. `go mod download -json` runs in a
// throwaway module, so the project's go.mod and go.sum do not learn of
// it.
func moduleDir(t *testing.T, path, version string) string {
	t.Helper()
	once, _ := testModules.LoadOrStore(path+"@"+version, sync.OnceValues(func() (string, error) {
		tmp, err := os.MkdirTemp("", "workload-modload-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module modload\n"), 0o644); err != nil {
			return "", err
		}
		c := exec.Command("go", "mod", "download", "-json", path+"@"+version)
		// GOWORK=off: a go.work above the folder must not pull it in;
		// GOFLAGS=-mod=mod: an inherited -mod=vendor would refuse.
		c.Dir, c.Env = tmp, append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := c.Output()
		var m struct{ Dir, Error string }
		if jerr := json.Unmarshal(out, &m); jerr != nil || m.Error != "" || err != nil || m.Dir == "" {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			return "", fmt.Errorf("go mod download %s@%s: %v %s %s", path, version, err, m.Error, stderr)
		}
		return m.Dir, nil
	}))
	dir, err := once.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// crdFile is a published CRD manifest: file inside module@version.
type crdFile struct{ module, version, file string }

var (
	rolloutCRD        = crdFile{rolloutsModule, rolloutsVersion, "manifests/crds/rollout-crd.yaml"}
	knativeServiceCRD = crdFile{servingModule, servingVersion, "config/core/300-resources/service.yaml"}
	knativeRevCRD     = crdFile{servingModule, servingVersion, "config/core/300-resources/revision.yaml"}
	knativeRouteCRD   = crdFile{servingModule, servingVersion, "config/core/300-resources/route.yaml"}
	scaledJobCRD      = crdFile{kedaModule, kedaVersion, "config/crd/bases/keda.sh_scaledjobs.yaml"}
	scaledObjectCRD   = crdFile{kedaModule, kedaVersion, "config/crd/bases/keda.sh_scaledobjects.yaml"}
	tfJobCRD          = crdFile{kubeflowModule, kubeflowVersion, "manifests/base/crds/kubeflow.org_tfjobs.yaml"}
	experimentCRD     = crdFile{rolloutsModule, rolloutsVersion, "manifests/crds/experiment-crd.yaml"}
	workflowCRD       = crdFile{workflowsModule, workflowsVersion, "manifests/base/crds/minimal/argoproj.io_workflows.yaml"}
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
