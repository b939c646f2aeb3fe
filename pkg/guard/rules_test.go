package guard

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// marked is a Secret's metadata as migrate --apply leaves it (invalidated
// for clean-up on 2026-12-01, guarded until 2026-12-31, never used
// before), after kube-apiserver wrote last-used on a rejected use.
func marked(edit func(labels, ann map[string]string)) *metav1.ObjectMeta {
	m := &metav1.ObjectMeta{
		Namespace: "ns", Name: "s", UID: "uid-1",
		Labels: map[string]string{
			legacy.LabelInvalidSince: "2026-12-01",
			legacy.LabelGuardUntil:   "2026-12-31",
			legacy.LabelLastUsed:     "2026-12-07",
		},
		Annotations: map[string]string{
			legacy.AnnotationInvalidatedOn:  "2026-12-01",
			legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp,
			legacy.AnnotationLastUsedBefore: legacy.LastUsedNone,
		},
	}
	if edit != nil {
		edit(m.Labels, m.Annotations)
	}
	return m
}

func TestEligible(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(l, a map[string]string)
		restore bool
		why     string
	}{
		{"presented", nil, true, WhyRestore},
		{"presented on the guard day", func(l, a map[string]string) { l[legacy.LabelLastUsed] = "2026-12-31" }, true, WhyRestore},
		{"presented the day of the invalidation, used that day before", func(l, a map[string]string) {
			// A use the same day as the recorded one writes nothing; but
			// a recorded earlier day and today differ.
			a[legacy.AnnotationLastUsedBefore] = "2026-06-01"
			l[legacy.LabelLastUsed] = "2026-12-01"
		}, true, WhyRestore},
		{"cleared label written again the same day", func(l, a map[string]string) {
			a[legacy.AnnotationLastUsedBefore] = "2026-12-01"
			a[legacy.AnnotationLastUsedCleared] = "true"
			l[legacy.LabelLastUsed] = "2026-12-01"
		}, true, WhyRestore},
		{"cleared label not written again", func(l, a map[string]string) {
			a[legacy.AnnotationLastUsedBefore] = "2026-12-01"
			a[legacy.AnnotationLastUsedCleared] = "true"
			delete(l, legacy.LabelLastUsed)
		}, false, WhyNotPresented},
		{"not invalid", func(l, a map[string]string) { delete(l, legacy.LabelInvalidSince) }, false, WhyNotInvalid},
		{"invalid-since empty: kube-apiserver accepts it", func(l, a map[string]string) { l[legacy.LabelInvalidSince] = "" }, false, WhyNotInvalid},
		{"cleaner or a person: no marks", func(l, a map[string]string) {
			delete(l, legacy.LabelGuardUntil)
			for k := range a {
				delete(a, k)
			}
		}, false, WhyNotOurs},
		{"a person's guard-until label alone", func(l, a map[string]string) {
			for k := range a {
				delete(a, k)
			}
		}, false, WhyNotOurs},
		{"revocation", func(l, a map[string]string) { a[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation }, false, WhyRevocation},
		{"unknown purpose", func(l, a map[string]string) { a[legacy.AnnotationInvalidatedFor] = "Clean-Up" }, false, WhyUnknownPurpose},
		{"restored before, invalid-since put back", func(l, a map[string]string) {
			a[legacy.AnnotationRestoredOnUse] = "2026-12-05"
			a[legacy.AnnotationRestoredBy] = legacy.RestoredByWatch
		}, false, WhyAlreadyRestored},
		{"no guard day", func(l, a map[string]string) { delete(l, legacy.LabelGuardUntil) }, false, WhyNoGuardDay},
		{"malformed guard day", func(l, a map[string]string) { l[legacy.LabelGuardUntil] = "2026-12-31T00" }, false, WhyBadGuardDay},
		{"no last-used record", func(l, a map[string]string) { delete(a, legacy.AnnotationLastUsedBefore) }, false, WhyNoLastUsedMark},
		{"malformed last-used record", func(l, a map[string]string) { a[legacy.AnnotationLastUsedBefore] = "never" }, false, WhyBadLastUsedMark},
		{"not presented: no label", func(l, a map[string]string) { delete(l, legacy.LabelLastUsed) }, false, WhyNotPresented},
		{"not presented: label as recorded", func(l, a map[string]string) {
			a[legacy.AnnotationLastUsedBefore] = "2026-11-20"
			l[legacy.LabelLastUsed] = "2026-11-20"
		}, false, WhyNotPresented},
		{"malformed last-used", func(l, a map[string]string) { l[legacy.LabelLastUsed] = "yesterday" }, false, WhyBadLastUsed},
		{"presented after the guard day", func(l, a map[string]string) { l[legacy.LabelLastUsed] = "2027-01-01" }, false, WhyGuardDayPassed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restore, why := Eligible(marked(tc.edit))
			if restore != tc.restore || why != tc.why {
				t.Errorf("Eligible = %v, %q; want %v, %q", restore, why, tc.restore, tc.why)
			}
		})
	}
}

func TestIsDate(t *testing.T) {
	for s, want := range map[string]bool{"2026-12-07": true, "2026-1-07": false, " 2026-12-07": false, "2026-12-07\n": false, "": false, "none": false} {
		if IsDate(s) != want {
			t.Errorf("IsDate(%q) = %v", s, !want)
		}
	}
}
