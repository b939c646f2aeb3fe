package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
)

// RolloutsCRDs are exactly the CRDs Argo Rollouts' install applies: the
// resources of manifests/crds/kustomization.yaml in the pinned module, each
// installed from its own file (realCRDs). A CRD added upstream that the
// controller waits for would otherwise leave it waiting for ever.
func TestRolloutsCRDsAreTheInstalledOnes(t *testing.T) {
	dir, err := modcache.Dir(modcache.ArgoRollouts, modcache.ArgoRolloutsVersion)
	if err != nil {
		t.Fatal(err)
	}
	crds := filepath.Join(dir, "manifests", "crds")
	b, err := os.ReadFile(filepath.Join(crds, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ Resources []string }
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, file := range k.Resources {
		var crd struct{ Metadata struct{ Name string } }
		b, err := os.ReadFile(filepath.Join(crds, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		names = append(names, crd.Metadata.Name)
		src, ok := realCRDs[crd.Metadata.Name]
		if !ok || src.module != modcache.ArgoRollouts || src.file != "manifests/crds/"+file {
			t.Errorf("realCRDs[%q] = %+v, want manifests/crds/%s of %s", crd.Metadata.Name, src, file, modcache.ArgoRollouts)
		}
	}
	got := slices.Sorted(slices.Values(RolloutsCRDs))
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("RolloutsCRDs = %v, the install applies %v", got, names)
	}
}

// Stop tells a controller that ended on its own (a crash, which the test
// must report) from one that Stop ended, and stops a running one.
func TestRolloutsControllerStop(t *testing.T) {
	run := func(script string) *RolloutsController {
		rc := &RolloutsController{cmd: exec.Command("sh", "-c", script), done: make(chan struct{})}
		if err := rc.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { rc.err = rc.cmd.Wait(); close(rc.done) }()
		return rc
	}
	crashed := run("exit 3")
	<-crashed.done
	if crashed.Running() {
		t.Error("Running after exit")
	}
	if err := crashed.Stop(); err == nil || err.Error() != "exit status 3" {
		t.Errorf("Stop of a crashed controller = %v, want exit status 3", err)
	}
	if err := crashed.Stop(); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
	running := run("sleep 60")
	if !running.Running() {
		t.Fatal("not Running")
	}
	start := time.Now()
	if err := running.Stop(); err != nil {
		t.Errorf("Stop of a running controller = %v, want nil", err)
	}
	if running.Running() || time.Since(start) > 5*time.Second {
		t.Errorf("Stop took %s; running %v", time.Since(start), running.Running())
	}
}
