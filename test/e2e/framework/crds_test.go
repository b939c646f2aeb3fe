package framework

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/bound-token/kubectl-bound-token/test/modcache"
)

// Each published CRD is a whole CRD object once read, with metadata the
// apiserver accepts: HyperShift's carries an annotation key with an empty
// name part, which installable drops (the apiserver validates CRD metadata
// with ValidateObjectMeta, as here).
func TestRealCRDManifestsAreInstallable(t *testing.T) {
	for name := range realCRDs {
		file, err := realCRDManifest(name)
		if err != nil {
			t.Fatal(err)
		}
		crd, err := readCRD(file, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if crd.GetAPIVersion() != "apiextensions.k8s.io/v1" || crd.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s: %s %s, not a CustomResourceDefinition", name, crd.GetAPIVersion(), crd.GetKind())
		}
		if errs := apivalidation.ValidateObjectMetaAccessor(crd, false, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata")); len(errs) > 0 {
			t.Errorf("%s: the apiserver would refuse it: %v", name, errs.ToAggregate())
		}
		for k := range crd.GetAnnotations() {
			if strings.HasPrefix(k, featureGateAnnotation) {
				t.Errorf("%s: annotation %q kept", name, k)
			}
		}
	}
}

// The OpenReports CRDs the tests install are those of the version go.mod
// requires: the tool's types and the schema the apiserver checks them
// against must be one release.
func TestOpenReportsPinMatchesGoMod(t *testing.T) {
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := "\t" + modcache.OpenReports + " " + modcache.OpenReportsVersion + "\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("go.mod does not require %s %s, the version whose CRDs the tests install", modcache.OpenReports, modcache.OpenReportsVersion)
	}
}
