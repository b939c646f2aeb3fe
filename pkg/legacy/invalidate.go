package legacy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	corev1 "k8s.io/api/core/v1"
)

// DefaultGuardDays is how long after its invalidation a Secret invalidated
// for clean-up stays guarded: a quarter, which covers a quarterly job, and
// DefaultThreshold, the wait before the delete verdict, so that by default
// a Secret is guarded until it may be deleted.
const DefaultGuardDays = 90

// markAnnotations are every annotation this tool (or a guard) writes.
var markAnnotations = []string{
	AnnotationInvalidatedOn, AnnotationInvalidatedFor, AnnotationLastUsedBefore,
	AnnotationLastUsedCleared, AnnotationRestoredOnUse, AnnotationRestoredBy,
}

// checkInvalidation checks what an invalidation writes before any change.
func (o ApplyOptions) checkInvalidation() error {
	if _, err := time.Parse(dateLayout, o.Date); err != nil {
		return fmt.Errorf("invalidation day %q is not a YYYY-MM-DD date", o.Date)
	}
	if !o.Revoke && o.GuardDays < 0 {
		return fmt.Errorf("a guard must last at least 1 day, not %d", o.GuardDays)
	}
	return nil
}

// guardDay is the last day a guard may restore a Secret invalidated on
// o.Date (checked by checkInvalidation).
func (o ApplyOptions) guardDay() string {
	d, _ := time.Parse(dateLayout, o.Date)
	return d.AddDate(0, 0, o.GuardDays).Format(dateLayout)
}

// purpose is the AnnotationInvalidatedFor value of this run.
func (o ApplyOptions) purpose() string {
	if o.Revoke {
		return InvalidatedForRevocation
	}
	return InvalidatedForCleanUp
}

// silentLastUsed reports whether kube-apiserver would leave a last-used
// label that says v alone when it rejects the token on day today (its
// UTC day): it writes the label only when it is neither today nor
// tomorrow (k8s.io/kubernetes@v1.37.2 pkg/serviceaccount/legacy.go,
// legacyValidator.patchSecretWithLastUsedDate, the same in v1.34.4).
// Any later day counts too: the run's day is read once from the server's
// Date header, to the second, and a use written just after midnight by a
// clock a little ahead must not slip through.
func silentLastUsed(v, today string) bool {
	if _, err := time.Parse(dateLayout, v); err != nil {
		// kube-apiserver overwrites a label that is not a date.
		return false
	}
	return v >= today
}

// invalidation is the merge patch that invalidates s on o.Date, with s's
// resourceVersion as its precondition. With the invalid-since label it
// writes, in the same request, the record that lets the audit and a guard
// see a rejected use (marks.go): the day, the purpose, the guard day (for
// clean-up only), and what the last-used label said. A last-used label
// that says today or later is cleared, so that the next rejected use
// writes it again instead of passing unseen. Marks of an earlier cycle (a
// guard's restore, a guard day) are removed: this invalidation starts a
// new one.
func (o ApplyOptions) invalidation(s *corev1.Secret) []byte {
	labels := map[string]any{LabelInvalidSince: o.Date}
	ann := map[string]any{
		AnnotationInvalidatedOn:   o.Date,
		AnnotationInvalidatedFor:  o.purpose(),
		AnnotationLastUsedCleared: nil,
		AnnotationRestoredOnUse:   nil,
		AnnotationRestoredBy:      nil,
	}
	if o.Revoke {
		labels[LabelGuardUntil] = nil
	} else {
		labels[LabelGuardUntil] = o.guardDay()
	}
	before := orLastUsedNone(s.Labels[LabelLastUsed])
	ann[AnnotationLastUsedBefore] = before
	if silentLastUsed(before, o.Date) {
		labels[LabelLastUsed] = nil
		ann[AnnotationLastUsedCleared] = "true"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": s.ResourceVersion,
		"labels":          labels,
		"annotations":     ann,
	}})
	return patch
}

// guarded reports whether s carries a guard: a guard day, or the mark of
// an invalidation for clean-up (which a revocation replaces).
func guarded(s *corev1.Secret) bool {
	_, has := s.Labels[LabelGuardUntil]
	return has || s.Annotations[AnnotationInvalidatedFor] == InvalidatedForCleanUp
}

// Unguards reports whether an invalidation for revocation changes f
// although it is already invalid: it takes off the guard of an earlier
// invalidation for clean-up, whatever the verdict (a leaked token must
// not be restored when presented).
func (f *Finding) Unguards(mode string, revoke bool) bool {
	return mode == backup.ModeInvalidate && revoke && f.InvalidSince != "" && f.Secret != nil && guarded(f.Secret)
}

// revocation is the merge patch that turns an invalidation for clean-up
// into one for revocation: its guard day goes, so no guard restores it
// when its (leaked) token is presented; the rest of the record stays.
func revocation(s *corev1.Secret) []byte {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": s.ResourceVersion,
		"labels":          map[string]any{LabelGuardUntil: nil},
		"annotations":     map[string]any{AnnotationInvalidatedFor: InvalidatedForRevocation},
	}})
	return patch
}

// invalidatedFrom reports whether cur is the backed-up Secret want (of uid)
// as an invalidation by this tool left it: the trace of a patch whose
// answer or record was lost. An invalidation by this version carries
// invalidated-on equal to the invalid-since label and the backed-up
// last-used value in last-used-before; the last-used label itself is not
// compared then, since the patch may have cleared it and kube-apiserver
// may have written it since. One by an earlier version wrote the label
// alone, with the backup folder's day (folderDay).
func invalidatedFrom(want *corev1.Secret, uid string, cur *corev1.Secret, folderDay string) bool {
	if uid != string(cur.UID) {
		return false
	}
	inv := cur.Labels[LabelInvalidSince]
	on, marked := cur.Annotations[AnnotationInvalidatedOn]
	switch {
	case marked && inv == on && inv != "":
		if cur.Annotations[AnnotationLastUsedBefore] != orLastUsedNone(want.Labels[LabelLastUsed]) {
			return false
		}
	case !marked && inv == folderDay && inv != "":
	default:
		return false
	}
	strip := func(s *corev1.Secret) *corev1.Secret {
		c := s.DeepCopy()
		delete(c.Labels, LabelInvalidSince)
		if marked {
			delete(c.Labels, LabelGuardUntil)
			delete(c.Labels, LabelLastUsed)
			for _, k := range markAnnotations {
				delete(c.Annotations, k)
			}
		}
		return c
	}
	w, c := strip(want), strip(cur)
	return mapsEqual(w.Labels, c.Labels) && mapsEqual(w.Annotations, c.Annotations) &&
		w.Type == c.Type && reflect.DeepEqual(w.Data, c.Data) && reflect.DeepEqual(w.Immutable, c.Immutable) &&
		w.Namespace == c.Namespace && w.Name == c.Name
}

// mapsEqual treats a nil map and an empty one alike, as a manifest does.
func mapsEqual(a, b map[string]string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// Settings keys an invalidation records in its backup folder (backup.OpSettings).
const (
	settingPurpose   = "invalidated-for"
	settingGuardDays = "guard-days"
)

func (o ApplyOptions) settings() map[string]string {
	s := map[string]string{settingPurpose: o.purpose()}
	if !o.Revoke {
		s[settingGuardDays] = fmt.Sprint(o.GuardDays)
	}
	return s
}

func describePurpose(s map[string]string) string {
	if s[settingPurpose] == InvalidatedForRevocation {
		return "an invalidation for revocation"
	}
	if d := s[settingGuardDays]; d != "" {
		return "an invalidation for clean-up guarded for " + d + " days"
	}
	return "an invalidation for clean-up"
}

// PurposeError says that a backup folder holds an invalidation for another
// purpose (or guard) than this run's: finishing it so would leave its
// Secrets with mixed marks, a revocation's among them guarded.
type PurposeError struct {
	Dir, Recorded, Wanted string
}

func (e *PurposeError) Error() string {
	return fmt.Sprintf("backup folder %s holds %s, this run asks for %s: nothing was changed; finish it with the same settings, or use a new folder", e.Dir, e.Recorded, e.Wanted)
}

// checkPurpose records this run's purpose in the folder, or compares it
// with the one an earlier run recorded there. A folder written before
// purposes were recorded takes this run's.
func checkPurpose(b *backup.Folder, o ApplyOptions) error {
	want := o.settings()
	got, err := b.Settle(want)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(got, want) {
		return &PurposeError{Dir: b.Dir, Recorded: describePurpose(got), Wanted: describePurpose(want)}
	}
	return nil
}
