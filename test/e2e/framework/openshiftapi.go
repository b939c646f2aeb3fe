package framework

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// OpenShiftAPIModule and OpenShiftAPIVersion pin the module the real
// OpenShift CRDs are read from. This is the only place the version is
// written down; the project's go.mod does not require the module (nothing
// in the tool imports it), so it is fetched on its own into the module
// cache (through GOPROXY, like every other module) by OpenShiftAPIDir.
const (
	OpenShiftAPIModule  = "github.com/openshift/api"
	OpenShiftAPIVersion = "v0.0.0-20260213204242-d34f11c515b3"
)

// openShiftCRDs maps the name of each OpenShift CRD the tests install to
// its manifest inside OpenShiftAPIModule: the manifests the cluster-version
// operator applies on a Default-feature-set cluster, with their schemas and
// CEL rules. InstallCRD prefers these to test/crds.
var openShiftCRDs = map[string]string{
	"authentications.config.openshift.io":  "config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_authentications-Default.crd.yaml",
	"kubeapiservers.operator.openshift.io": "operator/v1/zz_generated.crd-manifests/0000_20_kube-apiserver_01_kubeapiservers-Default.crd.yaml",
}

var openShiftAPI struct {
	once sync.Once
	dir  string
	err  error
}

// OpenShiftAPIDir downloads OpenShiftAPIModule@OpenShiftAPIVersion into
// the module cache if it is not there yet and returns its folder. It runs
// `go mod download -json` in a throwaway module, so neither the project's
// go.mod nor its go.sum learn of the module; the checksum is still checked
// against GOSUMDB as for any download.
func OpenShiftAPIDir() (string, error) {
	openShiftAPI.once.Do(func() {
		openShiftAPI.dir, openShiftAPI.err = downloadModule(OpenShiftAPIModule, OpenShiftAPIVersion)
	})
	return openShiftAPI.dir, openShiftAPI.err
}

func downloadModule(path, version string) (string, error) {
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

// crdManifest is the file InstallCRD reads for the CRD name: the real one
// from OpenShiftAPIModule when there is one, else test/crds/NAME.yaml.
func (c *Cluster) crdManifest(name string) (string, error) {
	if rel, ok := openShiftCRDs[name]; ok {
		dir, err := OpenShiftAPIDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, filepath.FromSlash(rel)), nil
	}
	return filepath.Join(c.repo, "test", "crds", name+".yaml"), nil
}
