package hypershift

import (
	"context"
	"errors"
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

// A Secret already under the new name is taken over only when it holds the
// new key and the same previous public key: what an earlier run that
// stopped before the patch leaves. Any other one is a signing key, refused.
func TestRotateTakesOverOnlyItsOwnSecret(t *testing.T) {
	ctx := context.Background()
	old, _ := keys.Generate("rsa2048", false)
	key, _ := keys.Generate("ec256", false)
	other, _ := keys.Generate("ec256", false)
	oldPub := old.PublicPEM
	otherPub := other.PublicPEM
	secret := func(k *keys.Pair, prevPub []byte) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "next", Namespace: "clusters", Annotations: map[string]string{KidAnnotation: k.KeyID}},
			Data:       map[string][]byte{keys.HyperShiftKey: k.PrivatePEM, keys.HyperShiftOldPublicKey: prevPub},
		}
	}
	for _, tc := range []struct {
		name     string
		existing *corev1.Secret
		want     string // error; "" for success
	}{
		{"another key", secret(other, oldPub), "already exists and holds another key"},
		{"this key after another previous key", secret(key, otherPub), "already exists and holds another key"},
		{"this key, same previous key", secret(key, oldPub), ""},
	} {
		cs := fake.NewSimpleClientset(
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "clusters"}, Data: map[string][]byte{"key": old.PrivatePEM}},
			tc.existing)
		dyn := clients(hc(map[string]any{"issuerURL": "https://a.example.com", "serviceAccountSigningKey": map[string]any{"name": "k"}}))
		res, err := Rotate(ctx, cs, dyn, Rotation{Namespace: "clusters", HostedCluster: "prod", Key: key, SecretName: "next"})
		got, _ := dyn.Resource(HostedClusterGVR).Namespace("clusters").Get(ctx, "prod", metav1.GetOptions{})
		if tc.want != "" {
			var we *WriteError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &we) {
				t.Errorf("%s: %v, want a refusal %q", tc.name, err, tc.want)
			}
			if SigningKeyName(got) != "k" {
				t.Errorf("%s: a refused rotation pointed the HostedCluster at %q", tc.name, SigningKeyName(got))
			}
			continue
		}
		if err != nil || !res.SecretExisted || res.NewKeyID != key.KeyID {
			t.Errorf("%s: %v %+v", tc.name, err, res)
		}
		if SigningKeyName(got) != "next" {
			t.Errorf("%s: the HostedCluster points at %q", tc.name, SigningKeyName(got))
		}
	}
}
