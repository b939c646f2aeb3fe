package guard

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1beta1 "k8s.io/api/admissionregistration/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// The CEL itself is compiled and run by the real apiserver in
// test/e2e/guard (guard install --dry-run=server refuses an expression
// that does not compile; TestEveryRuleIsNeeded removes each condition in
// turn). These tests hold the objects' shape and the rules of writing
// the CEL that no compiler checks.

func TestPolicyV1(t *testing.T) {
	p, b, err := Objects(VersionV1)
	if err != nil {
		t.Fatal(err)
	}
	pol := p.(*admissionregistrationv1.MutatingAdmissionPolicy)
	if pol.APIVersion != "admissionregistration.k8s.io/v1" || pol.Kind != "MutatingAdmissionPolicy" || pol.Name != PolicyName {
		t.Errorf("type or name: %v %s", pol.TypeMeta, pol.Name)
	}
	s := pol.Spec
	if s.FailurePolicy == nil || *s.FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("failurePolicy %v, want Ignore: never block kube-apiserver's own write", s.FailurePolicy)
	}
	if s.ReinvocationPolicy != admissionregistrationv1.NeverReinvocationPolicy {
		t.Errorf("reinvocationPolicy %q: required, Never", s.ReinvocationPolicy)
	}
	for _, k := range []string{AnnotationFailurePolicy, AnnotationReinvocation, AnnotationPurpose, AnnotationRevision} {
		if pol.Annotations[k] == "" {
			t.Errorf("annotation %s missing: the reasons must travel with the object", k)
		}
	}
	if !strings.HasPrefix(pol.Annotations[AnnotationFailurePolicy], "Ignore:") || !strings.Contains(pol.Annotations[AnnotationFailurePolicy], "HTTP status errors still fail") {
		t.Errorf("failure-policy annotation: %q", pol.Annotations[AnnotationFailurePolicy])
	}
	mc := s.MatchConstraints
	want := []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
	}}}
	if mc == nil || !cmp.Equal(mc.ResourceRules, want) {
		t.Errorf("resourceRules: %+v", mc)
	}
	wantSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: legacy.LabelInvalidSince, Operator: metav1.LabelSelectorOpExists},
		{Key: legacy.LabelGuardUntil, Operator: metav1.LabelSelectorOpExists},
	}}
	if diff := cmp.Diff(wantSel, mc.ObjectSelector); diff != "" {
		t.Errorf("objectSelector (-want +got):\n%s", diff)
	}
	// The same selection as the watch's.
	sel, err := metav1.LabelSelectorAsSelector(mc.ObjectSelector)
	watch, err2 := labels.Parse(GuardedLabelSelector())
	if err != nil || err2 != nil || sel.String() != watch.String() {
		t.Errorf("objectSelector %q, the watch selects %q", sel, watch)
	}
	if len(s.Mutations) != 1 || s.Mutations[0].PatchType != admissionregistrationv1.PatchTypeJSONPatch || s.Mutations[0].JSONPatch == nil {
		t.Errorf("mutations: %+v", s.Mutations)
	}
	if len(s.MatchConditions) != len(Conditions()) || s.MatchConditions[0].Expression != "request.userInfo.username == 'system:apiserver'" {
		t.Errorf("matchConditions: %+v", s.MatchConditions)
	}
	bind := b.(*admissionregistrationv1.MutatingAdmissionPolicyBinding)
	if bind.Spec.PolicyName != PolicyName || bind.Spec.MatchResources != nil || bind.Labels[ManagedByLabel] != ManagedBy || bind.Annotations[AnnotationRevision] != Revision() {
		t.Errorf("binding: %+v", bind)
	}
}

// TestV1beta1IsV1 proves the JSON round trip that writes v1beta1 loses
// nothing: the two documents differ in apiVersion only.
func TestV1beta1IsV1(t *testing.T) {
	p1, b1, _ := Objects(VersionV1)
	p2, b2, err := Objects(VersionV1beta1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p2.(*admissionregistrationv1beta1.MutatingAdmissionPolicy); !ok {
		t.Fatalf("v1beta1 policy is %T", p2)
	}
	for _, pair := range [][2]any{{p1, p2}, {b1, b2}} {
		j1, _ := json.Marshal(pair[0])
		j2, _ := json.Marshal(pair[1])
		j2 = []byte(strings.Replace(string(j2), `"apiVersion":"admissionregistration.k8s.io/v1beta1"`, `"apiVersion":"admissionregistration.k8s.io/v1"`, 1))
		if diff := cmp.Diff(string(j1), string(j2)); diff != "" {
			t.Errorf("v1beta1 differs from v1 beyond apiVersion (-v1 +v1beta1):\n%s", diff)
		}
	}
	if _, _, err := Objects("v1alpha1"); err == nil {
		t.Error("v1alpha1 accepted")
	}
}

// TestYAMLRoundTrip: what --dry-run=client -o yaml prints reads back
// strictly into the same objects.
func TestYAMLRoundTrip(t *testing.T) {
	p, b, _ := Objects(VersionV1)
	for _, o := range []any{p, b} {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var back any
		switch o.(type) {
		case *admissionregistrationv1.MutatingAdmissionPolicy:
			back = &admissionregistrationv1.MutatingAdmissionPolicy{}
		default:
			back = &admissionregistrationv1.MutatingAdmissionPolicyBinding{}
		}
		if err := yaml.UnmarshalStrict(y, back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(o, back); diff != "" {
			t.Errorf("YAML round trip (-want +got):\n%s", diff)
		}
	}
}

// mapLookup finds OBJ.metadata.labels['KEY'] and the like.
var mapLookup = regexp.MustCompile(`(object|oldObject)\.metadata\.(labels|annotations)\['([^']+)'\]`)

// TestEveryLookupIsGuarded: a missing map key is an error in CEL, not
// false, and an object without labels or annotations has no such field:
// every lookup in a condition needs `'KEY' in MAP` and has(MAP) in the
// same expression.
func TestEveryLookupIsGuarded(t *testing.T) {
	for _, c := range Conditions() {
		for _, m := range mapLookup.FindAllStringSubmatch(c.Expression, -1) {
			obj, field, key := m[1], m[2], m[3]
			if !strings.Contains(c.Expression, "'"+key+"' in "+obj+".metadata."+field) || !strings.Contains(c.Expression, "has("+obj+".metadata."+field+")") {
				t.Errorf("%s: %s unguarded in\n%s", c.Name, m[0], c.Expression)
			}
		}
		if strings.Count(c.Expression, "(") != strings.Count(c.Expression, ")") {
			t.Errorf("%s: unbalanced parentheses", c.Name)
		}
		if !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(c.Name) {
			t.Errorf("condition name %q is not a qualified name", c.Name)
		}
	}
	// Every compared day is checked for its shape by some condition.
	all := ""
	for _, c := range Conditions() {
		all += c.Expression + "\n"
	}
	for _, key := range []string{legacy.LabelLastUsed, legacy.LabelGuardUntil} {
		if !strings.Contains(all, "object.metadata.labels['"+key+"'].matches('"+DatePattern+"')") {
			t.Errorf("%s is compared but its shape is never checked", key)
		}
	}
	if !strings.Contains(all, "object.metadata.annotations['"+legacy.AnnotationLastUsedBefore+"'].matches('"+DatePattern+"')") {
		t.Errorf("%s is compared but its shape is never checked", legacy.AnnotationLastUsedBefore)
	}
}

// TestConditionsSpellEligible: every reason the shared rule can give
// (rules.go) is a condition's, or folded into one that checks the same
// key.
func TestConditionsSpellEligible(t *testing.T) {
	folded := map[string]string{
		WhyRevocation:      WhyNotOurs,        // invalidated-for must be clean-up
		WhyUnknownPurpose:  WhyNotOurs,        // idem
		WhyNoGuardDay:      WhyBadGuardDay,    // guard-day: present and a date (and the objectSelector)
		WhyBadLastUsedMark: WhyNoLastUsedMark, // last-used-recorded: present and none or a date
		WhyBadLastUsed:     WhyNotWritten,     // last-used-written: a date, changed by this write
	}
	have := map[string]bool{}
	for _, c := range Conditions() {
		have[c.Why] = true
	}
	for _, why := range []string{WhyNotInvalid, WhyNotOurs, WhyRevocation, WhyUnknownPurpose, WhyAlreadyRestored, WhyNoGuardDay, WhyBadGuardDay,
		WhyNoLastUsedMark, WhyBadLastUsedMark, WhyNotPresented, WhyBadLastUsed, WhyGuardDayPassed} {
		if f, ok := folded[why]; ok {
			why = f
		}
		if !have[why] {
			t.Errorf("no condition for %q", why)
		}
	}
	if !have[WhyNotKubeAPIServer] || !have[WhyNotWritten] {
		t.Error("the policy's own checks are missing")
	}
}

// TestPatchEscapesKeys: a key with '/' in a JSON patch path must go
// through jsonpatch.escapeKey, or the path names a deeper field.
func TestPatchEscapesKeys(t *testing.T) {
	e := PatchExpression()
	for _, k := range []string{legacy.LabelInvalidSince, legacy.AnnotationRestoredOnUse, legacy.AnnotationRestoredBy} {
		if !strings.Contains(e, "jsonpatch.escapeKey('"+k+"')") {
			t.Errorf("%s not escaped in\n%s", k, e)
		}
		if strings.Contains(e, `"/metadata/labels/`+k) || strings.Contains(e, `"/metadata/annotations/`+k) {
			t.Errorf("%s written raw into a path", k)
		}
	}
	// The absent-annotations branch adds the map whole.
	if !strings.Contains(e, "has(object.metadata.annotations) ?") || !strings.Contains(e, `path: "/metadata/annotations", value: {`) {
		t.Errorf("no branch for a Secret without annotations:\n%s", e)
	}
}

func TestRevision(t *testing.T) {
	r := Revision()
	if len(r) != 16 || r != Revision() {
		t.Errorf("revision %q: 16 hex digits, stable", r)
	}
}
