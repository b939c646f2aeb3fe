package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1beta1 "k8s.io/api/admissionregistration/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// The guard inside kube-apiserver: a MutatingAdmissionPolicy and its
// binding. When kube-apiserver rejects a legacy token because its Secret
// carries LabelInvalidSince, it patches the Secret's LabelLastUsed to its
// UTC today through its loopback client, as user system:apiserver
// (k8s.io/kubernetes@v1.37.2 pkg/serviceaccount/legacy.go, Validate and
// patchSecretWithLastUsedDate). That patch is an ordinary request: the
// whole admission chain sees it, and this policy turns it into a restore
// by removing LabelInvalidSince in the same write, so the client's next
// request is accepted (a failed authentication is not cached).

const (
	// PolicyName names both the policy and its binding.
	PolicyName  = "bound-token-guard"
	BindingName = PolicyName

	// ManagedByLabel marks the objects as this tool's: install updates
	// and uninstall deletes only objects that carry it.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubectl-bound-token"

	// AnnotationRevision is a digest of the policy and binding specs this
	// build writes: status tells an older policy from the current one.
	AnnotationRevision = legacy.MarkPrefix + "guard-revision"
	// AnnotationPurpose, AnnotationFailurePolicy and
	// AnnotationReinvocation say, on the object itself, what it does and
	// why its settings are what they are: YAML comments do not survive
	// the API.
	AnnotationPurpose       = legacy.MarkPrefix + "purpose"
	AnnotationFailurePolicy = legacy.MarkPrefix + "failure-policy"
	AnnotationReinvocation  = legacy.MarkPrefix + "reinvocation-policy"

	// APIServerUser and APIServerGroup are kube-apiserver's loopback
	// identity (k8s.io/apiserver@v0.37.2 pkg/server/config.go,
	// AuthorizeClientBearerToken: user.APIServerUser with groups
	// system:authenticated and user.SystemPrivilegedGroup).
	APIServerUser  = "system:apiserver"
	APIServerGroup = "system:masters"
)

// The versions of admissionregistration.k8s.io that serve
// MutatingAdmissionPolicy with the fields the guard needs: v1, GA and on
// by default from 1.36; v1beta1 in 1.34 and 1.35, served only with the
// MutatingAdmissionPolicy feature gate together with
// --runtime-config=admissionregistration.k8s.io/v1beta1=true (the gate
// alone stops kube-apiserver 1.34.4 at start-up). Both have the same
// fields under the same JSON names (k8s.io/api@v0.37.2
// admissionregistration/v1 and v1beta1 types.go); v1alpha1 is not used.
const (
	VersionV1      = "v1"
	VersionV1beta1 = "v1beta1"
	// DefaultVersion is what the objects are written as without a
	// cluster to ask.
	DefaultVersion = VersionV1
)

// Versions are the versions the guard can be installed through, newest
// first.
var Versions = []string{VersionV1, VersionV1beta1}

// Group is the API group of the policy and its binding.
const Group = "admissionregistration.k8s.io"

// PolicyResource and BindingResource are the resources of a version.
func PolicyResource(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: version, Resource: "mutatingadmissionpolicies"}
}

func BindingResource(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: Group, Version: version, Resource: "mutatingadmissionpolicybindings"}
}

// Condition is one matchCondition and the reason of the shared rule
// (rules.go, Eligible) it spells, or of the admission request, when the
// rule has no such step.
type Condition struct {
	Name       string
	Expression string
	// Why is the reason it stands for: a Why* constant of rules.go, or
	// WhyNotKubeAPIServer / WhyNotWritten.
	Why string
}

// The two checks only the policy makes: the watch sees the result of a
// write, the policy sees the write itself.
const (
	WhyNotKubeAPIServer = "the write is not kube-apiserver's own (user " + APIServerUser + ")"
	WhyNotWritten       = "the write does not change the last-used label"
)

// CEL spellings. Every map lookup is guarded with `in` (a missing key is
// an error, not false), and has() guards the maps themselves: an object
// without labels or annotations has no such field. oldObject is never
// null here (UPDATE only).
func celString(s string) string { return "'" + s + "'" }

func celLabel(obj, key string) string { return obj + ".metadata.labels[" + celString(key) + "]" }
func celAnn(obj, key string) string   { return obj + ".metadata.annotations[" + celString(key) + "]" }

func celHasLabel(obj, key string) string {
	return "has(" + obj + ".metadata.labels) && " + celString(key) + " in " + obj + ".metadata.labels"
}

func celHasAnn(obj, key string) string {
	return "has(" + obj + ".metadata.annotations) && " + celString(key) + " in " + obj + ".metadata.annotations"
}

// celIsDate checks a day's shape with matches() before it is compared:
// days of that shape compare as strings (CEL has no clock, and the
// last-used label kube-apiserver writes is the only "now" it can read).
func celIsDate(expr string) string { return expr + ".matches(" + celString(DatePattern) + ")" }

// celAll joins clauses with &&, one a line, so the printed policy reads.
func celAll(clauses ...string) string { return strings.Join(clauses, "\n&& ") }

// Conditions are the policy's matchConditions, in the order of Eligible's
// steps; all must hold. Each checks one thing and is the only one that
// checks it: a key another condition requires makes this one vacuously
// true when absent (so removing any one condition changes what is
// restored, which the e2e suite proves rule by rule), and its lookups
// are guarded so that it never errs. The shapes of days are checked by
// guard-day and last-used-written, which must hold too, before
// within-guard-day's comparison means anything. matchConditions cannot
// read the policy's variables (they are evaluated before them).
func Conditions() []Condition {
	const o, old = "object", "oldObject"
	lastUsed := celLabel(o, legacy.LabelLastUsed)
	guardDay := celLabel(o, legacy.LabelGuardUntil)
	before := celAnn(o, legacy.AnnotationLastUsedBefore)
	return []Condition{
		{"written-by-kube-apiserver", "request.userInfo.username == " + celString(APIServerUser), WhyNotKubeAPIServer},
		{"invalid", celAll(celHasLabel(o, legacy.LabelInvalidSince), celLabel(o, legacy.LabelInvalidSince)+" != ''"), WhyNotInvalid},
		{"invalidated-for-clean-up", celAll(celHasAnn(o, legacy.AnnotationInvalidatedFor),
			celAnn(o, legacy.AnnotationInvalidatedFor)+" == "+celString(legacy.InvalidatedForCleanUp)), WhyNotOurs},
		{"not-restored-before", "!(" + celHasAnn(o, legacy.AnnotationRestoredOnUse) + ")", WhyAlreadyRestored},
		{"guard-day", celAll(celHasLabel(o, legacy.LabelGuardUntil), celIsDate(guardDay)), WhyBadGuardDay},
		{"last-used-recorded", celAll(celHasAnn(o, legacy.AnnotationLastUsedBefore),
			"("+before+" == "+celString(legacy.LastUsedNone)+" || "+celIsDate(before)+")"), WhyNoLastUsedMark},
		// kube-apiserver writes the label only when it changes it
		// (legacy.go, patchSecretWithLastUsedDate): any other write to a
		// guarded Secret, even its own, is not a use.
		{"last-used-written", celAll(celHasLabel(o, legacy.LabelLastUsed), celIsDate(lastUsed),
			"!("+celHasLabel(old, legacy.LabelLastUsed)+" && "+celLabel(old, legacy.LabelLastUsed)+" == "+lastUsed+")"), WhyNotWritten},
		{"presented-since-invalidation", strings.Join([]string{"!(" + celHasLabel(o, legacy.LabelLastUsed) + ")",
			"!(" + celHasAnn(o, legacy.AnnotationLastUsedBefore) + ")",
			lastUsed + " != " + before,
			"(" + celHasAnn(o, legacy.AnnotationLastUsedCleared) + " && " + celAnn(o, legacy.AnnotationLastUsedCleared) + " == 'true')"}, "\n|| "), WhyNotPresented},
		{"within-guard-day", "!(" + celHasLabel(o, legacy.LabelLastUsed) + " && " + celString(legacy.LabelGuardUntil) + " in " + o + ".metadata.labels)" +
			"\n|| " + lastUsed + " <= " + guardDay, WhyGuardDayPassed},
	}
}

// PatchExpression is the mutation: remove LabelInvalidSince and record
// the restore (AnnotationRestoredOnUse = the day kube-apiserver wrote,
// AnnotationRestoredBy = RestoredByPolicy). Keys holding '/' are escaped
// with jsonpatch.escapeKey. Adding under /metadata/annotations/KEY fails
// the whole JSON patch when the object has no annotations map, and a
// failed patch leaves the Secret invalid, so an absent map is added
// whole. (The conditions require annotations today; the patch does not
// lean on that.) A CEL map literal takes values of one type: the label,
// read from an untyped object, is dyn until string() makes it a string.
func PatchExpression() string {
	lastUsed := celLabel("object", legacy.LabelLastUsed)
	key := func(k string) string { return "jsonpatch.escapeKey(" + celString(k) + ")" }
	return strings.Join([]string{
		`[`,
		`  JSONPatch{op: "remove", path: "/metadata/labels/" + ` + key(legacy.LabelInvalidSince) + `}`,
		`] + (has(object.metadata.annotations) ? [`,
		`  JSONPatch{op: "add", path: "/metadata/annotations/" + ` + key(legacy.AnnotationRestoredOnUse) + `, value: ` + lastUsed + `},`,
		`  JSONPatch{op: "add", path: "/metadata/annotations/" + ` + key(legacy.AnnotationRestoredBy) + `, value: ` + celString(legacy.RestoredByPolicy) + `}`,
		`] : [`,
		`  JSONPatch{op: "add", path: "/metadata/annotations", value: {` + celString(legacy.AnnotationRestoredOnUse) + `: string(` + lastUsed + `), ` +
			celString(legacy.AnnotationRestoredBy) + `: ` + celString(legacy.RestoredByPolicy) + `}}`,
		`])`,
	}, "\n")
}

const (
	purpose = "Restores a legacy token Secret that kubectl bound-token invalidated for clean-up " +
		"when kube-apiserver rejects its token and writes its last-used label (user system:apiserver), " +
		"up to the Secret's guard day (label " + legacy.LabelGuardUntil + "): the client sees one rejected request, not an outage. " +
		"Secrets invalidated by kube-controller-manager's cleaner, by hand or as a revocation are never touched."
	failurePolicyReason = "Ignore: the policy must never block kube-apiserver's own last-used write; an error in it leaves the Secret invalid, as without a guard. " +
		"Errors the admission chain returns as HTTP status errors still fail that write whatever this says " +
		"(k8s.io/apiserver pkg/admission/plugin/policy/mutating/dispatcher.go: the namespace cannot be read, no type converter yet, a patched object that does not decode); " +
		"kube-apiserver then only logs it and the token stays invalid."
	reinvocationReason = "Never: the mutation reads only labels and annotations no other admission plugin writes, and once it removed the invalid-since label its conditions no longer hold."
)

// Policy is the MutatingAdmissionPolicy, as v1.
func Policy() *admissionregistrationv1.MutatingAdmissionPolicy {
	ignore := admissionregistrationv1.Ignore
	var conds []admissionregistrationv1.MatchCondition
	for _, c := range Conditions() {
		conds = append(conds, admissionregistrationv1.MatchCondition{Name: c.Name, Expression: c.Expression})
	}
	p := &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: Group + "/" + VersionV1, Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   PolicyName,
			Labels: map[string]string{ManagedByLabel: ManagedBy},
			Annotations: map[string]string{
				AnnotationPurpose:       purpose,
				AnnotationFailurePolicy: failurePolicyReason,
				AnnotationReinvocation:  reinvocationReason,
			},
		},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
					},
				}},
				// Only Secrets invalid now and carrying a guard day reach
				// the CEL at all (GuardedLabelSelector). The selector
				// matches when the old or the new object does
				// (MatchResources.objectSelector): the conditions decide.
				ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: legacy.LabelInvalidSince, Operator: metav1.LabelSelectorOpExists},
					{Key: legacy.LabelGuardUntil, Operator: metav1.LabelSelectorOpExists},
				}},
			},
			MatchConditions: conds,
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{Expression: PatchExpression()},
			}},
			FailurePolicy:      &ignore,
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	return p
}

// Binding binds Policy everywhere: the policy's own constraints select.
func Binding() *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	return &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: Group + "/" + VersionV1, Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   BindingName,
			Labels: map[string]string{ManagedByLabel: ManagedBy},
		},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: PolicyName},
	}
}

// Revision is a digest of the two specs this build writes.
func Revision() string {
	b, err := json.Marshal([]any{Policy().Spec, Binding().Spec})
	if err != nil {
		panic(err) // plain structs of strings: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// Objects are the policy and its binding as version writes them, with
// AnnotationRevision set.
func Objects(version string) (policy, binding runtime.Object, err error) {
	p, b := Policy(), Binding()
	rev := Revision()
	p.Annotations[AnnotationRevision] = rev
	b.Annotations = map[string]string{AnnotationRevision: rev}
	switch version {
	case VersionV1:
		return p, b, nil
	case VersionV1beta1:
		// The same fields under the same JSON names: a JSON round trip is
		// the conversion, and a unit test proves it loses nothing.
		var bp admissionregistrationv1beta1.MutatingAdmissionPolicy
		var bb admissionregistrationv1beta1.MutatingAdmissionPolicyBinding
		if err := jsonConvert(p, &bp); err != nil {
			return nil, nil, err
		}
		if err := jsonConvert(b, &bb); err != nil {
			return nil, nil, err
		}
		bp.APIVersion, bb.APIVersion = Group+"/"+VersionV1beta1, Group+"/"+VersionV1beta1
		return &bp, &bb, nil
	}
	return nil, nil, fmt.Errorf("admissionregistration.k8s.io version %q: the guard is written as %s", version, strings.Join(Versions, " or "))
}

func jsonConvert(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
