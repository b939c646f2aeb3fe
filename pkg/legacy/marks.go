package legacy

// What this tool writes on a Secret it invalidates, and what a guard
// writes when it restores one: the record that lets an audit, a guard and
// restore tell our invalidation from the kube-controller-manager cleaner's
// (which writes only LabelInvalidSince, legacy_serviceaccount_token_cleaner.go)
// and from a person's, and that lets a rejected use be seen even on the day
// of invalidation. All live in this tool's own prefix.
const (
	// MarkPrefix is this tool's label and annotation prefix.
	MarkPrefix = "bound-token.kubectl.io/"

	// LabelGuardUntil (a label, so that admission policies' objectSelector
	// and list/watch label selectors can select on it) is the last day,
	// YYYY-MM-DD in UTC, on which a rejected use of this Secret's token
	// restores it. It is set only by an invalidation for clean-up; a
	// revocation never carries it, and restore never adds it back.
	LabelGuardUntil = MarkPrefix + "guard-until"

	// AnnotationInvalidatedOn is the day (YYYY-MM-DD, the server's
	// UTC day) this tool set LabelInvalidSince.
	AnnotationInvalidatedOn = MarkPrefix + "invalidated-on"
	// AnnotationInvalidatedFor says why: InvalidatedForCleanUp or
	// InvalidatedForRevocation.
	AnnotationInvalidatedFor = MarkPrefix + "invalidated-for"
	// AnnotationLastUsedBefore is what LabelLastUsed said just before the
	// invalidation: a date, or LastUsedNone. A Secret whose LabelLastUsed
	// differs from it was presented after the invalidation, on that very
	// day included.
	AnnotationLastUsedBefore = MarkPrefix + "last-used-before"
	// AnnotationLastUsedCleared is set ("true") when the invalidation
	// removed a LabelLastUsed that already said today or tomorrow:
	// kube-apiserver writes the label only when it says neither
	// (pkg/serviceaccount/legacy.go, patchSecretWithLastUsedDate), so a
	// rejected use would otherwise leave no trace.
	AnnotationLastUsedCleared = MarkPrefix + "last-used-cleared"

	// AnnotationRestoredOnUse is the day (the LabelLastUsed value
	// kube-apiserver wrote) a guard removed LabelInvalidSince because a
	// client presented the token; AnnotationRestoredBy says which guard
	// (RestoredByPolicy or RestoredByWatch).
	AnnotationRestoredOnUse = MarkPrefix + "restored-on-use"
	AnnotationRestoredBy    = MarkPrefix + "restored-by"

	InvalidatedForCleanUp    = "clean-up"
	InvalidatedForRevocation = "revocation"
	LastUsedNone             = "none"
	RestoredByPolicy         = "admission-policy"
	RestoredByWatch          = "guard-watch"
)
