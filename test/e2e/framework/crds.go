package framework

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRD creates the CRD NAME (e.g. kubeapiservers.operator.openshift.io)
// and waits until it is served. OpenShift's and HyperShift's own CRDs come
// from their publishers' modules (realCRDs), never hand-written ones.
// An existing one is kept. With remove, it is deleted when the test ends.
func (c *Cluster) InstallCRD(t testing.TB, name string, remove bool) {
	t.Helper()
	if err := c.InstallCRDNow(name); err != nil {
		t.Fatal(err)
	}
	if remove {
		t.Cleanup(func() {
			if dyn, err := dynamic.NewForConfig(c.RESTConfig); err == nil {
				_ = dyn.Resource(crdGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
			}
		})
	}
}

// InstallCRDNow is InstallCRD returning an error and keeping the CRD, for
// programs without a testing.TB (hack/openshift-sim, which `make demo` runs).
func (c *Cluster) InstallCRDNow(name string) error {
	file, err := c.crdManifest(name)
	if err != nil {
		return err
	}
	crd, err := readCRD(file, name)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if len(versions) == 0 || !strings.HasPrefix(name, plural+".") {
		return fmt.Errorf("%s: no versions or plural %q does not match", file, plural)
	}
	version, _ := versions[0].(map[string]any)["name"].(string)
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	// Served, and published in /openapi/v3: the apiserver publishes a
	// new CRD's schema a moment after it serves it
	// (apiextensions-apiserver pkg/controller/openapiv3, Controller.sync
	// runs from the CRD informer), and the audit reads the schemas: a
	// test must not start inside that moment, where the audit rightly
	// says the readers are unknown.
	disc, err := discovery.NewDiscoveryClientForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	return poll(30*time.Second, func() (bool, error) {
		_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, fmt.Errorf("%s not served yet: %w", gvr, err)
		}
		paths, err := disc.OpenAPIV3().Paths()
		if err != nil {
			return false, err
		}
		if _, ok := paths["apis/"+group+"/"+version]; !ok {
			return false, fmt.Errorf("%s not in /openapi/v3 yet", gvr.GroupVersion())
		}
		return true, nil
	})
}

// readCRD reads the CRD name from file, as the apiserver will take it.
func readCRD(file, name string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &crd.Object); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if crd.GetName() != name {
		return nil, fmt.Errorf("%s defines %q, not %q", file, crd.GetName(), name)
	}
	installable(crd)
	return crd, nil
}

// featureGateAnnotation prefixes the annotation that names the feature gate
// a partial manifest under zz_generated.featuregated-crd-manifests belongs
// to; HyperShift's AAA_ungated.yaml carries it with no gate name
// ("feature-gate.release.openshift.io/": "true", ungated). An annotation
// key must be a qualified name, whose name part after "/" may not be empty
// (apimachinery ValidateAnnotations, content.IsLabelKey), so the apiserver
// refuses the CRD: metadata.annotations: Invalid value:
// "feature-gate.release.openshift.io/": name part must be non-empty.
const featureGateAnnotation = "feature-gate.release.openshift.io/"

// installable drops what only the manifest-merge step reads: openshift/api
// tools/codegen/pkg/manifestmerge/generator.go deletes every
// feature-gate.release.openshift.io/ annotation before it writes the CRDs
// clusters install, so a real HostedCluster CRD carries none either. The
// schema is left as published.
func installable(crd *unstructured.Unstructured) {
	a := crd.GetAnnotations()
	for k := range a {
		if strings.HasPrefix(k, featureGateAnnotation) {
			delete(a, k)
		}
	}
	crd.SetAnnotations(a)
}

// HostedClusterSpec is a spec HyperShift's HostedCluster CRD (realCRDs)
// accepts: the required etcd, networking, platform, pullSecret, release
// and the four services its rules ask for, with issuerURL (omitted when
// "": the CRD then defaults it) and, if secret is not "",
// spec.serviceAccountSigningKey. Managed etcd needs spec.etcd.managed
// (EtcdSpec's rule "Only managed configuration must be set when
// managementType is Managed", hypershift/v1beta1/hostedcluster_types.go),
// which needs storage.type (PersistentVolume, the only one).
func HostedClusterSpec(issuer, secret string) map[string]any {
	svc := func(name string) any {
		return map[string]any{"service": name, "servicePublishingStrategy": map[string]any{"type": "LoadBalancer"}}
	}
	spec := map[string]any{
		"etcd": map[string]any{"managementType": "Managed",
			"managed": map[string]any{"storage": map[string]any{"type": "PersistentVolume"}}},
		"networking": map[string]any{"networkType": "OVNKubernetes"},
		"platform":   map[string]any{"type": "None"},
		"pullSecret": map[string]any{"name": "pull-secret"},
		"release":    map[string]any{"image": "quay.io/openshift-release-dev/ocp-release:4.19.0-x86_64"},
		"services":   []any{svc("APIServer"), svc("OAuthServer"), svc("Konnectivity"), svc("Ignition")},
	}
	if issuer != "" {
		spec["issuerURL"] = issuer
	}
	if secret != "" {
		spec["serviceAccountSigningKey"] = map[string]any{"name": secret}
	}
	return spec
}
