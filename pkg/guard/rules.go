package guard

import (
	"regexp"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// The rule both guards follow, in one place: the watch calls Eligible,
// the admission policy spells the same checks in CEL (policy.go). Keep the
// two in step: each check below names its reason, and a test in each file
// covers each reason.

// DatePattern is the only shape of day the guards compare: YYYY-MM-DD, as
// kube-apiserver writes the last-used label (pkg/serviceaccount/legacy.go,
// patchSecretWithLastUsedDate: time.Now().UTC().Format("2006-01-02")) and
// as migrate writes the guard day. Days of that shape compare as strings,
// which is how CEL, having no clock, compares them; RE2 in both Go and
// CEL's matches(), so the policy can use this very pattern.
const DatePattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`

var dateRE = regexp.MustCompile(DatePattern)

// IsDate reports whether s has DatePattern's shape.
func IsDate(s string) bool { return dateRE.MatchString(s) }

// SecretTypeField is the field selector of legacy token Secrets (secrets
// support "type": pkg/registry/core/secret/strategy.go, SelectableFields).
const SecretTypeField = "type=kubernetes.io/service-account-token"

// GuardedLabelSelector selects the Secrets a guard looks at: invalid now,
// and carrying a guard day (only an invalidation for clean-up writes one,
// legacy.LabelGuardUntil). The admission policy's objectSelector is the
// same two Exists requirements. A restore removes LabelInvalidSince, so a
// restored Secret leaves the selection (a watch sees it DELETED).
func GuardedLabelSelector() string {
	return legacy.LabelInvalidSince + "," + legacy.LabelGuardUntil
}

// Why a Secret is, or is not, restored. The strings are what the watch
// prints and tests match; the policy's reasons should say the same.
const (
	WhyRestore         = "presented after its invalidation, within its guard day"
	WhyNotInvalid      = "not invalid (no " + legacy.LabelInvalidSince + " label)"
	WhyNotOurs         = "not invalidated by this tool (no " + legacy.AnnotationInvalidatedFor + " annotation)"
	WhyRevocation      = "invalidated as a revocation: never guarded"
	WhyUnknownPurpose  = "invalidated for an unknown purpose"
	WhyNoGuardDay      = "no guard day (" + legacy.LabelGuardUntil + ")"
	WhyBadGuardDay     = "guard day is not a YYYY-MM-DD date"
	WhyNoLastUsedMark  = "no record of the last-used label before the invalidation (" + legacy.AnnotationLastUsedBefore + ")"
	WhyBadLastUsedMark = "the recorded last-used value is neither a date nor " + legacy.LastUsedNone
	WhyAlreadyRestored = "a guard restored it before (" + legacy.AnnotationRestoredOnUse + "): the invalid-since label now is not this tool's"
	WhyNotPresented    = "not presented since its invalidation (last-used unchanged)"
	WhyBadLastUsed     = "last-used label is not a YYYY-MM-DD date"
	WhyGuardDayPassed  = "presented after its guard day"
)

// Eligible holds the rule: a guard restores a Secret when all hold.
//
//  1. It is invalid: LabelInvalidSince is set and not empty
//     (kube-apiserver rejects only then: legacy.go, Validate,
//     `secret.Labels[InvalidSinceLabelKey] != ""`).
//  2. This tool invalidated it, for clean-up: AnnotationInvalidatedFor is
//     InvalidatedForCleanUp. The kube-controller-manager cleaner writes only
//     LabelInvalidSince (legacy_serviceaccount_token_cleaner.go), a person
//     writes what they write, and a revocation says InvalidatedForRevocation:
//     none of them is ever restored.
//  3. No guard restored it before (no AnnotationRestoredOnUse): a restore
//     leaves the marks as a record, so an invalid-since label on top of them
//     was put back by someone else. (An invalidation by this tool after a
//     restore writes fresh marks without that annotation.)
//  4. It carries a guard day (LabelGuardUntil, DatePattern) and the record
//     of the last-used label before the invalidation
//     (AnnotationLastUsedBefore: DatePattern or LastUsedNone).
//  5. A client presented it since: LabelLastUsed is a day (DatePattern)
//     that differs from the record, the same day included. When the
//     invalidation cleared a label that said today or tomorrow
//     (AnnotationLastUsedCleared = "true"), the label's presence alone says
//     so: kube-apiserver wrote it again.
//  6. That day is not after the guard day (kube-apiserver's UTC day:
//     no guard reads a clock of its own, the policy cannot).
func Eligible(m metav1.Object) (restore bool, why string) {
	labels, ann := m.GetLabels(), m.GetAnnotations()
	if labels[legacy.LabelInvalidSince] == "" {
		return false, WhyNotInvalid
	}
	switch purpose, ok := ann[legacy.AnnotationInvalidatedFor]; {
	case !ok:
		return false, WhyNotOurs
	case purpose == legacy.InvalidatedForRevocation:
		return false, WhyRevocation
	case purpose != legacy.InvalidatedForCleanUp:
		return false, WhyUnknownPurpose
	}
	if _, ok := ann[legacy.AnnotationRestoredOnUse]; ok {
		return false, WhyAlreadyRestored
	}
	until, ok := labels[legacy.LabelGuardUntil]
	if !ok {
		return false, WhyNoGuardDay
	}
	if !IsDate(until) {
		return false, WhyBadGuardDay
	}
	before, ok := ann[legacy.AnnotationLastUsedBefore]
	if !ok {
		return false, WhyNoLastUsedMark
	}
	if before != legacy.LastUsedNone && !IsDate(before) {
		return false, WhyBadLastUsedMark
	}
	used, ok := labels[legacy.LabelLastUsed]
	if !ok {
		return false, WhyNotPresented
	}
	if !IsDate(used) {
		return false, WhyBadLastUsed
	}
	if used == before && ann[legacy.AnnotationLastUsedCleared] != "true" {
		return false, WhyNotPresented
	}
	if used > until {
		return false, WhyGuardDayPassed
	}
	return true, WhyRestore
}
