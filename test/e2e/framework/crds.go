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
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRD creates the CRD NAME (e.g. kubeapiservers.operator.openshift.io)
// and waits until it is served. OpenShift's own CRDs come from the
// openshift/api module (openShiftCRDs, OpenShiftAPIDir); the others from
// test/crds/NAME.yaml. An existing one is kept. With remove, it is deleted
// when the test ends.
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
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &crd.Object); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	if crd.GetName() != name {
		return fmt.Errorf("%s defines %q, not %q", file, crd.GetName(), name)
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
	return poll(30*time.Second, func() (bool, error) {
		_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, fmt.Errorf("%s not served yet: %w", gvr, err)
		}
		return true, nil
	})
}

// HostedClusterSpec is a spec the test CRD for HostedCluster (as the real
// one) accepts: the required etcd, networking, platform, pullSecret,
// release and the four services the real schema asks for, with issuerURL
// (omitted when "": the CRD then defaults it) and, if secret is not "",
// spec.serviceAccountSigningKey.
func HostedClusterSpec(issuer, secret string) map[string]any {
	svc := func(name string) any {
		return map[string]any{"service": name, "servicePublishingStrategy": map[string]any{"type": "LoadBalancer"}}
	}
	spec := map[string]any{
		"etcd":       map[string]any{"managementType": "Managed"},
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
