// Package modcache gives tests the files of other projects' Go modules at
// pinned versions: their published CRDs, example manifests and API
// documents, which the tests read instead of writing stand-ins. The
// project's go.mod requires none of these modules (nothing in the tool
// imports them): each is fetched on its own into the module cache,
// through GOPROXY and checked against GOSUMDB as any download is, and
// the pins below are the one place their versions are written down.
//
// It is test support: it must not import any other package of this
// module.
package modcache

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// The pinned modules.
const (
	OpenShiftAPI        = "github.com/openshift/api"
	OpenShiftAPIVersion = "v0.0.0-20260213204242-d34f11c515b3"

	HyperShiftAPI        = "github.com/openshift/hypershift/api"
	HyperShiftAPIVersion = "v0.0.0-20251113182218-95835694eb99"

	// Argo Rollouts v1.10.1 (v1.10.2 needs Go 1.26.10): manifests/crds.
	ArgoRollouts        = "github.com/argoproj/argo-rollouts"
	ArgoRolloutsVersion = "v1.10.1"

	// Knative Serving v0.51.0: config/core/300-resources.
	KnativeServing        = "knative.dev/serving"
	KnativeServingVersion = "v0.51.0"

	// KEDA v2.20.2 (v2.21 needs Go 1.27): config/crd/bases.
	KEDA        = "github.com/kedacore/keda/v2"
	KEDAVersion = "v2.20.2"

	// Kubeflow Training Operator v1.8.1, the newest the proxy lists:
	// manifests/base/crds. Its jobs keep pod templates in maps.
	KubeflowTraining        = "github.com/kubeflow/training-operator"
	KubeflowTrainingVersion = "v1.8.1"

	// Argo Workflows v4.0.5: manifests/base/crds/minimal, whose spec is
	// x-kubernetes-preserve-unknown-fields. Only its YAML is read: no
	// code of it is built (security flaws are reported for v4.0.5's
	// code, none of which runs here).
	ArgoWorkflows        = "github.com/argoproj/argo-workflows/v4"
	ArgoWorkflowsVersion = "v4.0.5"

	// Kubernetes v1.37.2, the release of go.mod's k8s.io/api v0.37.2:
	// api/openapi-spec/v3 is what its kube-apiserver serves at
	// /openapi/v3 (hack/update-openapi-spec.sh writes it from a running
	// apiserver).
	Kubernetes        = "k8s.io/kubernetes"
	KubernetesVersion = "v1.37.2"

	// OpenReports v0.2.1: config/crd, the CRDs of the Report and
	// ClusterReport the tool writes. Unlike the others, go.mod requires
	// this module (its types and clients); the tests read its CRDs at
	// the same version (framework's TestOpenReportsPinMatchesGoMod).
	OpenReports        = "github.com/openreports/reports-api"
	OpenReportsVersion = "v0.2.1"
)

var dirs sync.Map // module@version -> func() (string, error)

// Dir downloads path@version into the module cache if it is not there yet
// and returns its folder, once per process and module.
func Dir(path, version string) (string, error) {
	once, _ := dirs.LoadOrStore(path+"@"+version, sync.OnceValues(func() (string, error) { return download(path, version) }))
	return once.(func() (string, error))()
}

// download runs `go mod download -json` in a throwaway module, so neither
// the project's go.mod nor its go.sum learn of the module; the checksum is
// still checked against GOSUMDB as for any download.
func download(path, version string) (string, error) {
	tmp, err := os.MkdirTemp("", "bound-token-modload-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module modload\n"), 0o644); err != nil {
		return "", err
	}
	c := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	// GOWORK=off: a go.work above the temporary folder must not pull it in.
	// GOFLAGS=-mod=mod: an inherited -mod=vendor would refuse the download.
	c.Dir, c.Env = tmp, append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := c.Output()
	// -json reports a failed download in its Error field (exit status 1).
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr != nil || m.Error != "" || err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("go mod download %s@%s: %v %s %s", path, version, err, m.Error, stderr)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s printed no Dir: %s", path, version, out)
	}
	return m.Dir, nil
}
