package hypershift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// HostedClusterGVR is hostedclusters.hypershift.openshift.io/v1beta1.
var HostedClusterGVR = schema.GroupVersionResource{Group: "hypershift.openshift.io", Version: "v1beta1", Resource: "hostedclusters"}

// KidAnnotation records the kid of the key a Secret holds.
const KidAnnotation = "bound-token.io/kid"

// Rotation describes one signing-key rotation.
type Rotation struct {
	Namespace, HostedCluster string
	// Key is the new signing key; it must be RSA (SigningKey converts it to
	// the PKCS#1 form HyperShift reads).
	Key *keys.Pair
	// SecretName for the new Secret; default "<hostedcluster>-sa-signing-key-<first 8 of kid>".
	SecretName string
	// Issuer, if set, must equal spec.issuerURL: it cannot be changed.
	Issuer string
	// Force rotates even when ValidConfiguration is already False.
	Force bool
	// KeepOldKeysFor: a retired key stays in old-key.pub this long after it
	// stopped signing (0 keeps only the key being replaced).
	KeepOldKeysFor time.Duration
	// Follow reads the hosted kube-apiserver Deployment's generation before
	// patching, so that WaitRollout can tell its next rollout.
	Follow bool
	// DryRun is kubectl's --dry-run strategy: DryRunClient stops before
	// writing; DryRunServer sends the Secret and the patch with dryRun=All
	// (the apiserver checks them, nothing is stored).
	DryRun cmdutil.DryRunStrategy
	// Confirm, when set, is asked once everything was read and checked,
	// before the first write (not on a dry run), with the rotation as it
	// will be made. It returns false to stop (kubeapi.ErrNotConfirmed), or an
	// error to stop with it.
	Confirm func(*Result) (bool, error)
	Now     func() time.Time
}

// Result is what was done.
type Result struct {
	metav1.TypeMeta `json:",inline"`
	HostedCluster   string `json:"hostedCluster"`
	Issuer          string `json:"issuerURL"`
	OldSecret       string `json:"oldSecret,omitempty"`
	OldKeyID        string `json:"oldKid,omitempty"`
	NewSecret       string `json:"newSecret"`
	NewKeyID        string `json:"kid"`
	// Trusted are the retired keys the new Secret's old-key.pub carries,
	// newest first; Dropped the kids of earlier ones left out (outside the
	// trust window).
	Trusted []OldKey `json:"trustedOldKeys,omitempty"`
	Dropped []string `json:"droppedOldKeys,omitempty"`
	// SecretExisted: an earlier run had created the new Secret, with this
	// key, and stopped before pointing the HostedCluster at it.
	SecretExisted bool `json:"secretExisted,omitempty"`
	// Generation is the HostedCluster's metadata.generation after the patch.
	Generation int64 `json:"generation,omitempty"`
	// ControlPlaneNamespace holds the hosted kube-apiserver Deployment,
	// whose generation before the patch was KASGeneration.
	ControlPlaneNamespace string `json:"controlPlaneNamespace,omitempty"`
	KASGeneration         int64  `json:"kubeAPIServerGeneration,omitempty"`
}

// DeepCopyObject makes the result printable by cli-runtime's printers.
func (r *Result) DeepCopyObject() runtime.Object {
	c := *r
	c.Trusted = append([]OldKey(nil), r.Trusted...)
	c.Dropped = append([]string(nil), r.Dropped...)
	return &c
}

// ErrNotHyperShift: hostedclusters.hypershift.openshift.io is not served.
var ErrNotHyperShift = errors.New("this cluster does not serve hostedclusters.hypershift.openshift.io: it is not a HyperShift management cluster")

// ErrSecretTaken: a Secret of the new Secret's name holds another key.
var ErrSecretTaken = errors.New("holds another key: refusing to replace a signing key")

// RefusedError: the cluster's state forbids the rotation; nothing was
// written. Forceable refusals can be overridden (Rotation.Force).
type RefusedError struct {
	Err       error
	Forceable bool
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// ValidConfiguration is the HostedCluster condition HyperShift's
// hostedcluster controller sets from validateConfigAndClusterCapabilities
// (hypershift-operator/controllers/hostedcluster/hostedcluster_controller.go,
// reconcile: Type ValidHostedClusterConfiguration = "ValidConfiguration",
// ObservedGeneration the HostedCluster's generation, Message the error).
const ValidConfiguration = "ValidConfiguration"

// Condition is one status condition.
type Condition struct {
	Status, Reason, Message string
	ObservedGeneration      int64
}

// GetCondition finds status.conditions[type=t], or nil.
func GetCondition(obj *unstructured.Unstructured, t string) *Condition {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range list {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != t {
			continue
		}
		out := &Condition{}
		out.Status, _ = m["status"].(string)
		out.Reason, _ = m["reason"].(string)
		out.Message, _ = m["message"].(string)
		switch g := m["observedGeneration"].(type) {
		case int64:
			out.ObservedGeneration = g
		case float64:
			out.ObservedGeneration = int64(g)
		}
		return out
	}
	return nil
}

// ControlPlaneNamespace is where the hosted control plane of HostedCluster
// ns/name runs: "<ns>-<name>", dots in the name turned into dashes
// (hypershift-operator/controllers/manifests/manifests.go,
// HostedControlPlaneNamespace).
func ControlPlaneNamespace(ns, name string) string {
	return ns + "-" + strings.ReplaceAll(name, ".", "-")
}

// KASDeployment is the hosted kube-apiserver's Deployment in the control
// plane namespace (control-plane-operator/controllers/hostedcontrolplane/
// manifests/kas.go, KASDeployment).
const KASDeployment = "kube-apiserver"

// Rotate performs r. The old Secret is kept: it still holds the key that
// signed every token issued so far.
//
// Every API call is repeated on transient errors. The Secret and the patch
// are both safe to repeat: a Secret of that name holding this very key is
// taken as ours (from an earlier try or run), and the patch carries the
// resourceVersion that was read, so a repeat after a lost answer conflicts
// and a look at the HostedCluster tells whether it went through.
//
// Errors from writing the Secret or the patch are *WriteError; refusals
// because of the cluster's state are *RefusedError; all others mean the
// input was wrong. Only a *WriteError may mean something was written.
func Rotate(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, r Rotation) (*Result, error) {
	if r.Now == nil {
		r.Now = time.Now
	}
	key, err := SigningKey(r.Key)
	if err != nil {
		return nil, err
	}
	hc, issuer, err := readRotatable(ctx, dyn, r)
	if err != nil {
		return nil, err
	}
	res := &Result{HostedCluster: r.Namespace + "/" + r.HostedCluster, Issuer: issuer, NewKeyID: key.KeyID}
	if r.Follow {
		res.ControlPlaneNamespace = ControlPlaneNamespace(r.Namespace, r.HostedCluster)
		if res.KASGeneration, err = kasGeneration(ctx, cs, res); err != nil {
			return nil, err
		}
	}
	data := map[string][]byte{keys.HyperShiftKey: key.PrivatePEM}
	if oldName := SigningKeyName(hc); oldName != "" {
		if data[keys.HyperShiftOldPublicKey], err = carryOldKeys(ctx, cs, r, oldName, key.KeyID, res); err != nil {
			return nil, err
		}
	}
	res.NewSecret = r.SecretName
	if res.NewSecret == "" {
		res.NewSecret = defaultSecretName(r.HostedCluster, key.KeyID)
	}
	if r.DryRun == cmdutil.DryRunClient {
		return res, nil
	}
	if r.Confirm != nil && r.DryRun != cmdutil.DryRunServer {
		ok, err := r.Confirm(res)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, kubeapi.ErrNotConfirmed
		}
	}
	secret := newSigningKeySecret(r.Namespace, res.NewSecret, key.KeyID, data, res.Trusted)
	dryRun := kubeapi.DryRunAll(r.DryRun)
	if res.SecretExisted, err = createSecret(ctx, cs, secret, key.KeyID, dryRun); err != nil {
		return nil, err
	}
	if res.Generation, err = pointAt(ctx, dyn, hc, res.NewSecret, dryRun); err != nil {
		return nil, err
	}
	return res, nil
}

// readRotatable reads the HostedCluster and returns it with its
// spec.issuerURL, refusing what a new signing key cannot work with: no
// issuerURL or HyperShift's default one (both immutable after creation),
// one other than r.Issuer, or a configuration HyperShift already rejects
// (ValidConfiguration False, unless r.Force).
func readRotatable(ctx context.Context, dyn dynamic.Interface, r Rotation) (*unstructured.Unstructured, string, error) {
	hc, err := getHostedCluster(ctx, dyn, r.Namespace, r.HostedCluster)
	if err != nil {
		var s apierrors.APIStatus
		if apierrors.IsNotFound(err) {
			if asStatus(err, &s) && (s.Status().Details == nil || s.Status().Details.Name == "") {
				return nil, "", ErrNotHyperShift
			}
			return nil, "", fmt.Errorf("hostedcluster %s/%s not found", r.Namespace, r.HostedCluster)
		}
		return nil, "", fmt.Errorf("read hostedcluster %s/%s: %w", r.Namespace, r.HostedCluster, err)
	}
	issuer, _, _ := unstructured.NestedString(hc.Object, "spec", "issuerURL")
	if r.Issuer != "" && r.Issuer != issuer {
		return nil, "", fmt.Errorf("spec.issuerURL of hostedcluster %s/%s is immutable after creation (it is %q): it cannot be changed to %q; only the signing key can be rotated", r.Namespace, r.HostedCluster, issuer, r.Issuer)
	}
	if issuer == "" {
		return nil, "", fmt.Errorf("hostedcluster %s/%s has no spec.issuerURL: HyperShift only honours a signing key together with an issuerURL, which can only be set at creation", r.Namespace, r.HostedCluster)
	}
	if issuer == DefaultIssuerURL {
		return nil, "", &RefusedError{Err: fmt.Errorf("spec.issuerURL of hostedcluster %s/%s is the default %s, which only in-cluster clients can verify, and it cannot be changed after creation: a custom signing key needs a HostedCluster created with its own issuerURL; nothing was changed", r.Namespace, r.HostedCluster, DefaultIssuerURL)}
	}
	if c := GetCondition(hc, ValidConfiguration); c != nil && c.Status == "False" && !r.Force {
		return nil, "", &RefusedError{Forceable: true, Err: fmt.Errorf("hostedcluster %s/%s already has %s=False (%s): HyperShift is not applying its configuration; fix that first; nothing was changed", r.Namespace, r.HostedCluster, ValidConfiguration, text.OneLine(c.Message, 300))}
	}
	return hc, issuer, nil
}

// kasGeneration reads the generation of the hosted kube-apiserver
// Deployment in res.ControlPlaneNamespace before the patch, so that
// WaitRollout can tell its next rollout; it refuses when that rollout could
// not be followed.
func kasGeneration(ctx context.Context, cs kubernetes.Interface, res *Result) (int64, error) {
	// Listed by name, as WaitRollout will: that needs "list" and "watch".
	deps, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*appsv1.DeploymentList, error) {
		return cs.AppsV1().Deployments(res.ControlPlaneNamespace).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", KASDeployment).String()})
	})
	switch {
	case apierrors.IsForbidden(err):
		return 0, &RefusedError{Err: fmt.Errorf("not allowed to list deployments in the control-plane namespace %q (RBAC verbs \"list\" and \"watch\" on deployments.apps there), where the rotation's rollout is followed; nothing was changed", res.ControlPlaneNamespace)}
	case err != nil:
		return 0, fmt.Errorf("read deployment %s/%s: %w; nothing was changed", res.ControlPlaneNamespace, KASDeployment, err)
	case len(deps.Items) == 0:
		return 0, &RefusedError{Err: fmt.Errorf("deployment %s/%s not found: the hosted control plane of %s is not running, so its rollout could not be followed; nothing was changed", res.ControlPlaneNamespace, KASDeployment, res.HostedCluster)}
	}
	return deps.Items[0].Generation, nil
}

// carryOldKeys reads the current signing-key Secret oldName and returns
// the new Secret's old-key.pub: the public key being replaced, always (it
// signed tokens until now), then the earlier ones that Secret carries while
// they are inside r.KeepOldKeysFor. It records in res the old Secret and
// kid, the keys carried (Trusted) and those left out (Dropped).
func carryOldKeys(ctx context.Context, cs kubernetes.Interface, r Rotation, oldName, newKID string, res *Result) ([]byte, error) {
	old, err := getSecret(ctx, cs, r.Namespace, oldName)
	if err != nil {
		return nil, fmt.Errorf("read the current signing-key Secret %s/%s: %w", r.Namespace, oldName, err)
	}
	ks, err := jwt.ParsePEM(old.Data[keys.HyperShiftKey])
	if err != nil || len(ks.Keys) == 0 {
		return nil, &RefusedError{Err: fmt.Errorf("secret %s/%s: %q does not hold a PEM private key; fix it before rotating", r.Namespace, oldName, keys.HyperShiftKey)}
	}
	prev := ks.Keys[0]
	if prev.ID == newKID {
		return nil, fmt.Errorf("the new key is the key already in use (kid %s)", newKID)
	}
	res.OldSecret, res.OldKeyID = oldName, prev.ID
	oldPub, err := keys.PublicPEM(prev.Public)
	if err != nil {
		return nil, err
	}
	// The key being replaced signed tokens until now: always carried.
	t := r.Now().UTC().Truncate(time.Second)
	res.Trusted = []OldKey{{KeyID: prev.ID, Retired: t, DropAfter: dropAfter(t, r.KeepOldKeysFor)}}
	// The keys the current Secret carries stay while inside the window.
	b, ok := old.Data[keys.HyperShiftOldPublicKey]
	if !ok {
		return oldPub, nil
	}
	earlier, err := ParseOldPublicKeys(b)
	if err != nil {
		return nil, &RefusedError{Err: fmt.Errorf("secret %s/%s: %q is not PEM public keys (%v), though HyperShift hands it to kube-apiserver as is; fix it before rotating", r.Namespace, oldName, keys.HyperShiftOldPublicKey, err)}
	}
	known := ParseOldKeys(old.Annotations)
	seen := map[string]bool{prev.ID: true, newKID: true}
	for _, k := range earlier.Keys {
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		retired := t // not recorded: assume it signed until now
		if rec, ok := known[k.ID]; ok && !rec.Retired.IsZero() {
			retired = rec.Retired
		}
		if !retired.Add(r.KeepOldKeysFor).After(r.Now()) {
			res.Dropped = append(res.Dropped, k.ID)
			continue
		}
		p, err := keys.PublicPEM(k.Public)
		if err != nil {
			return nil, err
		}
		oldPub = append(oldPub, p...)
		res.Trusted = append(res.Trusted, OldKey{KeyID: k.ID, Retired: retired, DropAfter: dropAfter(retired, r.KeepOldKeysFor)})
	}
	return oldPub, nil
}

// defaultSecretName is the new Secret's name when none is given:
// "<hostedcluster>-sa-signing-key-<first 8 of the kid>", the kid lowercased
// and without dashes and underscores.
func defaultSecretName(hostedCluster, kid string) string {
	suffix := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(kid))
	if len(suffix) > 8 {
		suffix = suffix[:8]
	}
	return fmt.Sprintf("%s-sa-signing-key-%s", hostedCluster, suffix)
}

// newSigningKeySecret is the new Secret: data holds the key and
// old-key.pub, the annotations its kid and when each carried key retired.
func newSigningKeySecret(ns, name, kid string, data map[string][]byte, carried []OldKey) *corev1.Secret {
	ann := map[string]string{KidAnnotation: kid}
	if len(carried) > 0 {
		ann[OldKeysAnnotation] = formatOldKeys(append([]OldKey(nil), carried...))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// WriteError is a failure to create the new Secret or to point the
// HostedCluster at it; the message says what was left behind. KeptSecret
// ("namespace/name") is the new Secret, left in place when the patch
// failed: running the rotation again with the same key takes it over.
type WriteError struct {
	Err        error
	KeptSecret string
}

func (e *WriteError) Error() string { return e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

func getHostedCluster(ctx context.Context, dyn dynamic.Interface, ns, name string) (*unstructured.Unstructured, error) {
	return retry.Value(ctx, retry.Default, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return dyn.Resource(HostedClusterGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	})
}

func getSecret(ctx context.Context, cs kubernetes.Interface, ns, name string) (*corev1.Secret, error) {
	return retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.Secret, error) {
		return cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	})
}

// createSecret creates s, or finds it already there holding the key kid
// with the same old-key.pub: that one is ours, from a try whose answer was
// lost or from an earlier run that stopped before the patch. Any other
// Secret of that name is a signing key that must not be replaced. existed
// tells the earlier run's Secret from our own.
func createSecret(ctx context.Context, cs kubernetes.Interface, s *corev1.Secret, kid string, dryRun []string) (existed bool, err error) {
	tries, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		_, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{DryRun: dryRun})
		return err
	})
	if err == nil {
		return false, nil
	}
	if !apierrors.IsAlreadyExists(err) && !retry.MayHaveApplied(tries, err) {
		if apierrors.IsForbidden(err) {
			return false, &WriteError{Err: fmt.Errorf("not allowed to create secrets in namespace %q (RBAC verb \"create\" on \"secrets\"); nothing was changed", s.Namespace)}
		}
		return false, &WriteError{Err: fmt.Errorf("create secret %s/%s: %w; nothing was changed", s.Namespace, s.Name, err)}
	}
	cur, gerr := getSecret(ctx, cs, s.Namespace, s.Name)
	switch {
	case gerr == nil && holds(cur, s, kid):
		return tries == 1, nil
	case gerr == nil && apierrors.IsAlreadyExists(err):
		return false, fmt.Errorf("secret %s/%s already exists and %w", s.Namespace, s.Name, ErrSecretTaken)
	case apierrors.IsNotFound(gerr):
		return false, &WriteError{Err: fmt.Errorf("create secret %s/%s: %w; nothing was changed", s.Namespace, s.Name, err)}
	}
	return false, &WriteError{Err: fmt.Errorf("create secret %s/%s: %w; %s", s.Namespace, s.Name, err, retry.RunAgain)}
}

func holds(cur, want *corev1.Secret, kid string) bool {
	ks, err := jwt.ParsePEM(cur.Data[keys.HyperShiftKey])
	return err == nil && len(ks.Keys) == 1 && ks.Keys[0].ID == kid &&
		cur.Annotations[KidAnnotation] == kid &&
		bytes.Equal(cur.Data[keys.HyperShiftOldPublicKey], want.Data[keys.HyperShiftOldPublicKey])
}

// pointAt sets spec.serviceAccountSigningKey.name of hc to name, guarded by
// the resourceVersion read at the start.
func pointAt(ctx context.Context, dyn dynamic.Interface, hc *unstructured.Unstructured, name string, dryRun []string) (int64, error) {
	ns, hcName := hc.GetNamespace(), hc.GetName()
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": hc.GetResourceVersion()},
		"spec":     map[string]any{"serviceAccountSigningKey": map[string]any{"name": name}},
	})
	if err != nil {
		return 0, err
	}
	var gen int64
	tries, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		got, err := dyn.Resource(HostedClusterGVR).Namespace(ns).Patch(ctx, hcName, types.MergePatchType, patch, metav1.PatchOptions{DryRun: dryRun})
		if err == nil {
			gen = got.GetGeneration()
		}
		return err
	})
	lookFailed := false
	if tries > 1 && (apierrors.IsConflict(err) || retry.MayHaveApplied(tries, err)) {
		cur, gerr := getHostedCluster(ctx, dyn, ns, hcName)
		if gerr == nil && SigningKeyName(cur) == name {
			return cur.GetGeneration(), nil
		}
		lookFailed = gerr != nil
	}
	kept := ns + "/" + name
	switch {
	case err == nil:
		return gen, nil
	case lookFailed:
		return 0, &WriteError{Err: fmt.Errorf("patch hostedcluster %s/%s: %w; an earlier try may have gone through: check spec.serviceAccountSigningKey.name", ns, hcName, err), KeptSecret: kept}
	case apierrors.IsConflict(err):
		return 0, &WriteError{Err: fmt.Errorf("hostedcluster %s/%s changed while rotating, so it was not changed", ns, hcName), KeptSecret: kept}
	}
	return 0, &WriteError{Err: fmt.Errorf("patch hostedcluster %s/%s: %w; it was not changed", ns, hcName, err), KeptSecret: kept}
}

// SigningKeyName is spec.serviceAccountSigningKey.name of a HostedCluster.
func SigningKeyName(hc *unstructured.Unstructured) string {
	n, _, _ := unstructured.NestedString(hc.Object, "spec", "serviceAccountSigningKey", "name")
	return n
}

func asStatus(err error, s *apierrors.APIStatus) bool {
	st, ok := err.(apierrors.APIStatus)
	if ok {
		*s = st
	}
	return ok
}
