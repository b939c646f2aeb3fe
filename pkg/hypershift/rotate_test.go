package hypershift

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

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
	key, _ := keys.Generate("rsa2048", false)
	ec, _ := keys.Generate("ec256", false)
	p8ec, _ := keys.Generate("ec256", true)
	invalid := hc(map[string]any{"issuerURL": "https://a.example.com"})
	invalid.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "ValidConfiguration", "status": "False", "observedGeneration": int64(1), "message": "invalid service account signing key: cannot decode private key in secret k"}}}
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
		{"EC key", hc(map[string]any{"issuerURL": "https://a.example.com"}), Rotation{Key: ec}, "HyperShift reads only RSA signing keys"},
		{"PKCS#8 EC key", hc(map[string]any{"issuerURL": "https://a.example.com"}), Rotation{Key: p8ec}, "HyperShift reads only RSA signing keys"},
		{"default issuer", hc(map[string]any{"issuerURL": DefaultIssuerURL}), Rotation{}, "is the default https://kubernetes.default.svc"},
		{"ValidConfiguration False", invalid, Rotation{}, "already has ValidConfiguration=False (invalid service account signing key"},
	} {
		r := tc.r
		r.Namespace = "clusters"
		if r.Key == nil {
			r.Key = key
		}
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
	key, _ := keys.Generate("rsa2048", false)
	cs := fake.NewSimpleClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "clusters"}, Data: map[string][]byte{"key": old.PrivatePEM}})
	dyn := clients(hc(map[string]any{"issuerURL": "https://a.example.com", "serviceAccountSigningKey": map[string]any{"name": "k"}}))
	res, err := Rotate(context.Background(), cs, dyn, Rotation{Namespace: "clusters", HostedCluster: "prod", Key: key, DryRun: cmdutil.DryRunClient})
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
	key, _ := keys.Generate("rsa2048", false)
	other, _ := keys.Generate("rsa2048", false)
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

// A PKCS#8 RSA key is stored as PKCS#1, the only form HyperShift reads.
func TestSigningKeyConvertsPKCS8(t *testing.T) {
	p8, _ := keys.Generate("rsa2048", true)
	if _, err := ParseSigningKey(p8.PrivatePEM); err == nil {
		t.Fatal("HyperShift's rule accepted a PKCS#8 key")
	}
	k, err := SigningKey(p8)
	if err != nil || k.KeyID != p8.KeyID || !strings.HasPrefix(string(k.PrivatePEM), "-----BEGIN RSA PRIVATE KEY-----") {
		t.Fatalf("%v %s", err, k.PrivatePEM[:40])
	}
	if _, err := ParseSigningKey(k.PrivatePEM); err != nil {
		t.Fatal(err)
	}
}

// Earlier keys stay in old-key.pub while inside the window counted from
// when they stopped signing; the key being replaced always does.
func TestRotateKeepsKeysInsideTheWindow(t *testing.T) {
	ctx := context.Background()
	k1, _ := keys.Generate("rsa2048", false)
	k2, _ := keys.Generate("rsa2048", false)
	k3, _ := keys.Generate("rsa2048", false)
	k4, _ := keys.Generate("rsa2048", false)
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	retired := now.Add(-30 * 24 * time.Hour)
	cur := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "k2", Namespace: "clusters", Annotations: map[string]string{
			OldKeysAnnotation: formatOldKeys([]OldKey{{KeyID: k1.KeyID, Retired: retired, DropAfter: dropAfter(retired, DefaultKeepOldKeysFor)}}),
		}},
		Data: map[string][]byte{"key": k2.PrivatePEM, "old-key.pub": append(append([]byte{}, k1.PublicPEM...), k4.PublicPEM...)},
	}
	for _, tc := range []struct {
		keep    time.Duration
		trusted []string
		dropped []string
	}{
		{DefaultKeepOldKeysFor, []string{k2.KeyID, k1.KeyID, k4.KeyID}, nil},
		// k4 has no record: taken as retired now, so 10 days keep it.
		{10 * 24 * time.Hour, []string{k2.KeyID, k4.KeyID}, []string{k1.KeyID}},
		{0, []string{k2.KeyID}, []string{k1.KeyID, k4.KeyID}},
	} {
		cs := fake.NewSimpleClientset(cur.DeepCopy())
		dyn := clients(hc(map[string]any{"issuerURL": "https://a.example.com", "serviceAccountSigningKey": map[string]any{"name": "k2"}}))
		res, err := Rotate(ctx, cs, dyn, Rotation{Namespace: "clusters", HostedCluster: "prod", Key: k3, SecretName: "k3", KeepOldKeysFor: tc.keep, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range res.Trusted {
			got = append(got, k.KeyID)
		}
		if strings.Join(got, ",") != strings.Join(tc.trusted, ",") || strings.Join(res.Dropped, ",") != strings.Join(tc.dropped, ",") {
			t.Errorf("keep %s: trusted %v dropped %v, want %v and %v", tc.keep, got, res.Dropped, tc.trusted, tc.dropped)
		}
		s, _ := cs.CoreV1().Secrets("clusters").Get(ctx, "k3", metav1.GetOptions{})
		pub, err := ParseOldPublicKeys(s.Data["old-key.pub"])
		if err != nil || len(pub.Keys) != len(tc.trusted) {
			t.Errorf("keep %s: old-key.pub holds %v (%v)", tc.keep, pub, err)
		}
		rec := ParseOldKeys(s.Annotations)
		if len(rec) != len(tc.trusted) || rec[k2.KeyID].DropAfter != now.Add(tc.keep).Format(time.DateOnly) {
			t.Errorf("keep %s: annotation %s", tc.keep, s.Annotations[OldKeysAnnotation])
		}
	}
}
