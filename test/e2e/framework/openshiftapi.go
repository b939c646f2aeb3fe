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
// OpenShift CRDs are read from, HyperShiftAPIModule and
// HyperShiftAPIVersion the one HyperShift's are read from. This is the
// only place the versions are written down; the project's go.mod requires
// neither module (nothing in the tool imports them), so each is fetched on
// its own into the module cache (through GOPROXY, like every other module)
// by moduleDir.
const (
	OpenShiftAPIModule = "github.com/openshift/api"
	// ArgoRolloutsModule publishes the Rollout CRD (CONTEXT.md: v1.10.1
	// builds with this machine's Go).
	ArgoRolloutsModule  = "github.com/argoproj/argo-rollouts"
	ArgoRolloutsVersion = "v1.10.1"
	OpenShiftAPIVersion = "v0.0.0-20260213204242-d34f11c515b3"

	HyperShiftAPIModule  = "github.com/openshift/hypershift/api"
	HyperShiftAPIVersion = "v0.0.0-20251113182218-95835694eb99"
)

// crdSource is where a real CRD's manifest lives: file inside module@version.
type crdSource struct{ module, version, file string }

// realCRDs maps the name of each CRD the tests install from its
// publisher's module to its manifest there, with its schema and CEL
// rules. InstallCRD installs only these.
var realCRDs = map[string]crdSource{
	// The manifests the cluster-version operator applies on a
	// Default-feature-set cluster.
	"authentications.config.openshift.io": {OpenShiftAPIModule, OpenShiftAPIVersion,
		"config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_authentications-Default.crd.yaml"},
	"kubeapiservers.operator.openshift.io": {OpenShiftAPIModule, OpenShiftAPIVersion,
		"operator/v1/zz_generated.crd-manifests/0000_20_kube-apiserver_01_kubeapiservers-Default.crd.yaml"},
	// The HostedCluster schema without feature-gated fields: what every
	// feature set installs (the module publishes no merged per-feature-set
	// CRD; HyperShift merges these files into the ones its install applies).
	// Fields behind a gate (ExternalOIDC, GCPPlatform, ...) are pruned here.
	// It needs one fix before the apiserver takes it: see installable.
	// Argo Rollouts' own CRD (manifests/crds, what its install.yaml
	// applies): its pod template is typed but for volumes, which it leaves
	// x-kubernetes-preserve-unknown-fields.
	"rollouts.argoproj.io": {ArgoRolloutsModule, ArgoRolloutsVersion, "manifests/crds/rollout-crd.yaml"},
	"hostedclusters.hypershift.openshift.io": {HyperShiftAPIModule, HyperShiftAPIVersion,
		"hypershift/v1beta1/zz_generated.featuregated-crd-manifests/hostedclusters.hypershift.openshift.io/AAA_ungated.yaml"},
}

var modules struct {
	mu   sync.Mutex
	dirs map[string]*moduleDownload
}

type moduleDownload struct {
	once sync.Once
	dir  string
	err  error
}

// moduleDir downloads path@version into the module cache if it is not
// there yet and returns its folder, once per process and module.
func moduleDir(path, version string) (string, error) {
	modules.mu.Lock()
	if modules.dirs == nil {
		modules.dirs = map[string]*moduleDownload{}
	}
	d := modules.dirs[path+"@"+version]
	if d == nil {
		d = &moduleDownload{}
		modules.dirs[path+"@"+version] = d
	}
	modules.mu.Unlock()
	d.once.Do(func() { d.dir, d.err = downloadModule(path, version) })
	return d.dir, d.err
}

// downloadModule runs `go mod download -json` in a throwaway module, so
// neither the project's go.mod nor its go.sum learn of the module; the
// checksum is still checked against GOSUMDB as for any download.
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
// from its publisher's module (realCRDs): never a hand-written stand-in.
func (c *Cluster) crdManifest(name string) (string, error) {
	return realCRDManifest(name)
}

func realCRDManifest(name string) (string, error) {
	src, ok := realCRDs[name]
	if !ok {
		return "", fmt.Errorf("no published manifest for CRD %s", name)
	}
	dir, err := moduleDir(src.module, src.version)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.FromSlash(src.file)), nil
}
