// Package hypershift rotates the service-account signing key of a HyperShift
// HostedCluster: a new Secret (never replacing the old one) whose "key" holds
// the new private key and "old-key.pub" the previous public key, so tokens
// signed before the rotation keep verifying, then spec.serviceAccountSigningKey
// is pointed at it.
package hypershift

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

// HostedClusterGVR is hostedclusters.hypershift.openshift.io/v1beta1.
var HostedClusterGVR = schema.GroupVersionResource{Group: "hypershift.openshift.io", Version: "v1beta1", Resource: "hostedclusters"}

// KidAnnotation records the kid of the key a Secret holds.
const KidAnnotation = "bound-token.io/kid"

// Rotation describes one signing-key rotation.
type Rotation struct {
	Namespace, HostedCluster string
	// Key is the new signing key.
	Key *keys.Pair
	// SecretName for the new Secret; default "<hostedcluster>-sa-signing-key-<first 8 of kid>".
	SecretName string
	// Issuer, if set, must equal spec.issuerURL: it cannot be changed.
	Issuer string
	DryRun bool
}

// Result is what was done.
type Result struct {
	HostedCluster string `json:"hostedCluster"`
	Issuer        string `json:"issuerURL"`
	OldSecret     string `json:"oldSecret,omitempty"`
	OldKeyID      string `json:"oldKid,omitempty"`
	NewSecret     string `json:"newSecret"`
	NewKeyID      string `json:"kid"`
}

// ErrNotHyperShift: hostedclusters.hypershift.openshift.io is not served.
var ErrNotHyperShift = fmt.Errorf("this cluster does not serve hostedclusters.hypershift.openshift.io: it is not a HyperShift management cluster; point --kubeconfig at the management cluster")

// Rotate performs r. The old Secret is kept: it still holds the key that
// signed every token issued so far.
func Rotate(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, r Rotation) (*Result, error) {
	hc, err := dyn.Resource(HostedClusterGVR).Namespace(r.Namespace).Get(ctx, r.HostedCluster, metav1.GetOptions{})
	if err != nil {
		var s apierrors.APIStatus
		if apierrors.IsNotFound(err) {
			if asStatus(err, &s) && (s.Status().Details == nil || s.Status().Details.Name == "") {
				return nil, ErrNotHyperShift
			}
			return nil, fmt.Errorf("hostedcluster %s/%s not found", r.Namespace, r.HostedCluster)
		}
		return nil, fmt.Errorf("read hostedcluster %s/%s: %w", r.Namespace, r.HostedCluster, err)
	}
	issuer, _, _ := unstructured.NestedString(hc.Object, "spec", "issuerURL")
	if r.Issuer != "" && r.Issuer != issuer {
		return nil, fmt.Errorf("spec.issuerURL of hostedcluster %s/%s is immutable after creation (it is %q): it cannot be changed to %q; only the signing key can be rotated", r.Namespace, r.HostedCluster, issuer, r.Issuer)
	}
	if issuer == "" {
		return nil, fmt.Errorf("hostedcluster %s/%s has no spec.issuerURL: HyperShift only honours a signing key together with an issuerURL, which can only be set at creation", r.Namespace, r.HostedCluster)
	}
	res := &Result{HostedCluster: r.Namespace + "/" + r.HostedCluster, Issuer: issuer, NewKeyID: r.Key.KeyID}

	oldName, _, _ := unstructured.NestedString(hc.Object, "spec", "serviceAccountSigningKey", "name")
	data := map[string][]byte{keys.HyperShiftKey: r.Key.PrivatePEM}
	if oldName != "" {
		old, err := cs.CoreV1().Secrets(r.Namespace).Get(ctx, oldName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read the current signing-key Secret %s/%s: %w", r.Namespace, oldName, err)
		}
		ks, err := jwt.ParsePEM(old.Data[keys.HyperShiftKey])
		if err != nil || len(ks.Keys) == 0 {
			return nil, fmt.Errorf("secret %s/%s: %q does not hold a PEM private key; fix it before rotating", r.Namespace, oldName, keys.HyperShiftKey)
		}
		pub, err := keys.PublicPEM(ks.Keys[0].Public)
		if err != nil {
			return nil, err
		}
		if ks.Keys[0].ID == r.Key.KeyID {
			return nil, fmt.Errorf("the new key is the key already in use (kid %s)", r.Key.KeyID)
		}
		res.OldSecret, res.OldKeyID = oldName, ks.Keys[0].ID
		data[keys.HyperShiftOldPublicKey] = pub
	}
	name := r.SecretName
	if name == "" {
		suffix := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(r.Key.KeyID))
		if len(suffix) > 8 {
			suffix = suffix[:8]
		}
		name = fmt.Sprintf("%s-sa-signing-key-%s", r.HostedCluster, suffix)
	}
	res.NewSecret = name
	if r.DryRun {
		return res, nil
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace, Annotations: map[string]string{KidAnnotation: r.Key.KeyID}},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if err := keys.CreateSecret(ctx, cs, secret); err != nil {
		return nil, err
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": hc.GetResourceVersion()},
		"spec":     map[string]any{"serviceAccountSigningKey": map[string]any{"name": name}},
	})
	if _, err := dyn.Resource(HostedClusterGVR).Namespace(r.Namespace).Patch(ctx, r.HostedCluster, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("hostedcluster %s/%s changed while rotating; the new Secret %s was created but is not in use: run the command again with --key pointing at it or delete it", r.Namespace, r.HostedCluster, name)
		}
		return nil, fmt.Errorf("patch hostedcluster %s/%s (the new Secret %s was created but is not in use): %w", r.Namespace, r.HostedCluster, name, err)
	}
	return res, nil
}

func asStatus(err error, s *apierrors.APIStatus) bool {
	st, ok := err.(apierrors.APIStatus)
	if ok {
		*s = st
	}
	return ok
}
