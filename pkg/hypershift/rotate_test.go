package hypershift

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

func hc(spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
		"metadata": map[string]any{"name": "prod", "namespace": "clusters"}, "spec": spec,
	}}
}

func clients(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{HostedClusterGVR: "HostedClusterList"}, objs...)
}

func TestRotateRefusals(t *testing.T) {
	key, _ := keys.Generate("ec256", false)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		hc   *unstructured.Unstructured
		r    Rotation
		want string
	}{
		{"no issuerURL", hc(map[string]any{}), Rotation{}, "has no spec.issuerURL"},
		{"change issuerURL", hc(map[string]any{"issuerURL": "https://a.example.com"}), Rotation{Issuer: "https://b.example.com"}, "is immutable after creation"},
		{"missing", hc(map[string]any{}), Rotation{HostedCluster: "other"}, "hostedcluster clusters/other not found"},
	} {
		r := tc.r
		r.Namespace, r.Key = "clusters", key
		if r.HostedCluster == "" {
			r.HostedCluster = "prod"
		}
		cs := fake.NewSimpleClientset()
		_, err := Rotate(ctx, cs, clients(tc.hc), r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if s, _ := cs.CoreV1().Secrets("clusters").List(ctx, metav1.ListOptions{}); len(s.Items) != 0 {
			t.Errorf("%s: a refused rotation created a Secret", tc.name)
		}
	}
}

func TestRotateDryRunChangesNothing(t *testing.T) {
	old, _ := keys.Generate("rsa2048", false)
	key, _ := keys.Generate("ec256", false)
	cs := fake.NewSimpleClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "clusters"}, Data: map[string][]byte{"key": old.PrivatePEM}})
	dyn := clients(hc(map[string]any{"issuerURL": "https://a.example.com", "serviceAccountSigningKey": map[string]any{"name": "k"}}))
	res, err := Rotate(context.Background(), cs, dyn, Rotation{Namespace: "clusters", HostedCluster: "prod", Key: key, DryRun: true})
	if err != nil || res.OldKeyID != old.KeyID || res.NewKeyID != key.KeyID || !strings.HasPrefix(res.NewSecret, "prod-sa-signing-key-") {
		t.Fatalf("%v %+v", err, res)
	}
	if s, _ := cs.CoreV1().Secrets("clusters").List(context.Background(), metav1.ListOptions{}); len(s.Items) != 1 {
		t.Fatal("dry run created a Secret")
	}
	// Rotating to the key in use is refused.
	same, _ := keys.NewPair(old.Private, false)
	if _, err := Rotate(context.Background(), cs, dyn, Rotation{Namespace: "clusters", HostedCluster: "prod", Key: same}); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatal(err)
	}
}
