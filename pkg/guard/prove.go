package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// The proof: a served policy is not an enforced one (the admission plugin
// can be disabled, the binding missing), so the guard is proved by sending
// kube-apiserver's own last-used patch, byte for byte, as kube-apiserver's
// identity, with dryRun=All: the answer is the Secret as the admission
// chain left it, and nothing is stored.

// ProofState is what a proof found.
type ProofState string

const (
	// Acting: the dry-run patch came back restored.
	Acting ProofState = "acting"
	// NotActing: it came back still invalid.
	NotActing ProofState = "not-acting"
	// Unproven: it could not be sent (no right to impersonate, no Secret
	// to send it to, an error).
	Unproven ProofState = "unproven"
)

// Proof is the outcome of Prove.
type Proof struct {
	State ProofState `json:"state"`
	// Secret is NAMESPACE/NAME of the Secret the patch was sent to.
	Secret string `json:"secret,omitempty"`
	// Throwaway: that Secret was created for the proof, and deleted.
	Throwaway bool `json:"throwaway,omitempty"`
	// LastUsed is the day the patch wrote.
	LastUsed string `json:"lastUsed,omitempty"`
	// Reason says why it is unproven or not acting.
	Reason string `json:"reason,omitempty"`
}

// ProveOptions are the proof's choices.
type ProveOptions struct {
	// Throwaway allows, when no Secret this tool marked can carry the
	// proof, creating one in Namespace (an Opaque Secret with the marks
	// and no data), and deleting it after.
	Throwaway bool
	Namespace string
	// Wait: probe again until the policy acts or this passes (a new
	// policy takes a moment to reach kube-apiserver's policy cache);
	// zero probes once.
	Wait time.Duration
	// Interval between probes (default 500 ms).
	Interval time.Duration
	// Now is the clock for the throwaway's days (default time.Now).
	Now func() time.Time
}

// ProbeLabel marks a throwaway Secret of the proof.
const ProbeLabel = legacy.MarkPrefix + "guard-probe"

// Prove sends kube-apiserver's last-used patch as kube-apiserver, dry
// run, to a Secret the policy must restore, and says whether it did.
func Prove(ctx context.Context, c *Cluster, o ProveOptions) Proof {
	if c.AsAPIServer == nil {
		reason := "no client impersonating " + APIServerUser
		if c.AsAPIServerErr != nil {
			reason = c.AsAPIServerErr.Error()
		}
		return Proof{State: Unproven, Reason: reason}
	}
	if reason := mayImpersonate(ctx, c); reason != "" {
		return Proof{State: Unproven, Reason: reason}
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	target, day, why, err := markedTarget(ctx, c)
	if err != nil {
		why = err.Error()
	}
	var p Proof
	if target == nil {
		if !o.Throwaway {
			return Proof{State: Unproven, Reason: why + "; a throwaway Secret would prove it"}
		}
		s, cleanup, err := throwaway(ctx, c, o.Namespace, o.Now().UTC())
		if err != nil {
			return Proof{State: Unproven, Reason: why + "; cannot create a throwaway Secret in namespace " + o.Namespace + " to test it on: " + text.OneLine(err.Error(), 300)}
		}
		defer cleanup()
		target, day, p.Throwaway = s, s.Labels[legacy.LabelInvalidSince], true
	}
	p.Secret, p.LastUsed = target.Namespace+"/"+target.Name, day
	deadline := time.Now().Add(o.Wait)
	for {
		got, err := lastUsedPatch(ctx, c, target, day)
		switch {
		case err == nil && proofRestored(got, day):
			p.State, p.Reason = Acting, ""
			return p
		case err == nil:
			p.State = NotActing
			p.Reason = "kube-apiserver's own last-used patch, sent as " + APIServerUser + " with dryRun=All, came back still invalid: " +
				"the policy is served but did not act (is the MutatingAdmissionPolicy admission plugin disabled by --disable-admission-plugins?)"
		default:
			p.State, p.Reason = Unproven, "the dry-run patch failed: "+text.OneLine(err.Error(), 300)
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
				return p
			}
		}
		if !time.Now().Add(o.Interval).Before(deadline) {
			return p
		}
		select {
		case <-ctx.Done():
			return p
		case <-time.After(o.Interval):
		}
	}
}

// mayImpersonate asks (SelfSubjectAccessReview) whether the user may act
// as kube-apiserver's loopback identity; "" when yes, else why not.
func mayImpersonate(ctx context.Context, c *Cluster) string {
	for _, ra := range []authorizationv1.ResourceAttributes{
		{Verb: "impersonate", Resource: "users", Name: APIServerUser},
		{Verb: "impersonate", Resource: "groups", Name: APIServerGroup},
	} {
		r, err := c.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra},
		}, metav1.CreateOptions{})
		if err != nil {
			return "cannot ask whether you may impersonate " + APIServerUser + ": " + text.OneLine(err.Error(), 300)
		}
		if !r.Status.Allowed {
			return fmt.Sprintf("you may not impersonate %s %s (SelfSubjectAccessReview), which the proof needs: it sends kube-apiserver's own patch as kube-apiserver", ra.Resource, ra.Name)
		}
	}
	return ""
}

// markedTarget finds a legacy token Secret this tool invalidated that the
// policy must restore when kube-apiserver writes day into its last-used
// label: the same rule the watch follows (Eligible), day chosen so that it
// holds. nil with the reason when there is none.
func markedTarget(ctx context.Context, c *Cluster) (*metav1.ObjectMeta, string, string, error) {
	var found *metav1.ObjectMeta
	var day string
	err := eachGuardedMeta(ctx, c.Metadata, GuardedLabelSelector(), func(m metav1.Object) bool {
		if d, ok := probeDay(m); ok {
			found, day = &metav1.ObjectMeta{Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID()}, d
			return false
		}
		return true
	})
	if err != nil {
		return nil, "", "", err
	}
	if found == nil {
		return nil, "", "no legacy token Secret this tool invalidated for clean-up to test it on", nil
	}
	return found, day, "", nil
}

// probeDay is a last-used day for which Eligible holds on m: its guard
// day, or one of the two days before it (the day must differ from the
// label now and from the recorded one).
func probeDay(m metav1.Object) (string, bool) {
	until, err := time.Parse(time.DateOnly, m.GetLabels()[legacy.LabelGuardUntil])
	if err != nil {
		return "", false
	}
	for i := 0; i < 3; i++ {
		d := until.AddDate(0, 0, -i).Format(time.DateOnly)
		if d == m.GetLabels()[legacy.LabelLastUsed] {
			continue
		}
		c := metav1.ObjectMeta{Labels: map[string]string{}, Annotations: m.GetAnnotations()}
		for k, v := range m.GetLabels() {
			c.Labels[k] = v
		}
		c.Labels[legacy.LabelLastUsed] = d
		if ok, _ := Eligible(&c); ok {
			return d, true
		}
	}
	return "", false
}

// throwaway creates an Opaque Secret carrying the marks of an
// invalidation for clean-up (invalid since today, guarded until
// tomorrow, never used before), and a cleanup that deletes it. It holds
// no data and is no token Secret: no audit, count or watch lists it.
func throwaway(ctx context.Context, c *Cluster, ns string, now time.Time) (*metav1.ObjectMeta, func(), error) {
	today, tomorrow := now.Format(time.DateOnly), now.AddDate(0, 0, 1).Format(time.DateOnly)
	s, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: PolicyName + "-probe-",
			Labels: map[string]string{
				ProbeLabel:               "true",
				legacy.LabelInvalidSince: today,
				legacy.LabelGuardUntil:   tomorrow,
			},
			Annotations: map[string]string{
				legacy.AnnotationInvalidatedOn:  today,
				legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp,
				legacy.AnnotationLastUsedBefore: legacy.LastUsedNone,
			},
		},
		Type: corev1.SecretTypeOpaque,
	}, metav1.CreateOptions{FieldManager: ManagedBy})
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		// The caller's context may be done by now; the delete still goes.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.Client.CoreV1().Secrets(ns).Delete(dctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	}
	return &s.ObjectMeta, cleanup, nil
}

// lastUsedPatch sends, as kube-apiserver and with dryRun=All, the patch
// kube-apiserver sends when it rejects an invalidated token: a merge
// patch of the apply configuration
// applyv1.Secret(name, ns).WithUID(uid).WithLabels({LabelLastUsed: today})
// (k8s.io/kubernetes@v1.37.2 pkg/serviceaccount/legacy.go,
// patchSecretWithLastUsedDate).
func lastUsedPatch(ctx context.Context, c *Cluster, s *metav1.ObjectMeta, day string) (*corev1.Secret, error) {
	body, err := json.Marshal(applycorev1.Secret(s.Name, s.Namespace).WithUID(s.UID).WithLabels(map[string]string{legacy.LabelLastUsed: day}))
	if err != nil {
		return nil, err
	}
	return c.AsAPIServer.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, body, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
}

// proofRestored says the answer shows the policy's restore.
func proofRestored(s *corev1.Secret, day string) bool {
	_, invalid := s.Labels[legacy.LabelInvalidSince]
	return !invalid && s.Annotations[legacy.AnnotationRestoredOnUse] == day && s.Annotations[legacy.AnnotationRestoredBy] == legacy.RestoredByPolicy
}

var probeSecretsResource = corev1.SchemeGroupVersion.WithResource("secrets")
