package legacy

import (
	"fmt"
	"strings"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

const day = 24 * time.Hour

// DefaultThreshold is how long a token must be unused (or invalid) before
// the verdict calls it safe to invalidate (or delete).
const DefaultThreshold = 90 * day

// DefaultCleanupPeriod is kube-controller-manager's
// --legacy-service-account-token-clean-up-period default (365 days;
// cmd/kube-controller-manager/app/options/legacyserviceaccounttokencleaner.go).
const DefaultCleanupPeriod = 365 * day

// Tracking is what ConfigMap
// kube-system/kube-apiserver-legacy-service-account-token-tracking says:
// kube-apiserver records legacy token use (the last-used label) only
// since the day in its `since` key.
type Tracking struct {
	// Since is the tracking start; zero when unknown.
	Since time.Time `json:"-"`
	// Day is Since as the ConfigMap writes it (YYYY-MM-DD), for output.
	Day string `json:"since,omitempty"`
	// Unknown says why Since is not known (ConfigMap missing, forbidden,
	// malformed); empty when it is.
	Unknown string `json:"unknown,omitempty"`
}

// Known reports whether use is tracked from a known day.
func (t Tracking) Known() bool { return t.Unknown == "" && (!t.Since.IsZero() || t.Day != "") }

// KnownSince is the first instant from which a missing last-used label
// proves no use: 00:00 UTC of the day after `since`, as the cleaner
// computes it (pkg/controller/serviceaccount/
// legacy_serviceaccount_token_cleaner.go, latestPossibleTrackedSinceTime:
// "make sure the time to be 00:00 on the day just after the date starts
// to track").
func (t Tracking) KnownSince() time.Time { return t.Since.Add(day) }

// judge holds what a verdict rests on besides the Secret itself.
type judge struct {
	now       time.Time
	threshold time.Duration
	period    time.Duration
	tracking  Tracking
	seen      func(ns, name string) *SeenUse
}

// dayEnd reads a label day (YYYY-MM-DD, UTC) as the last instant it
// covers: the label holds a day, not a time, so a use on that day may have
// been at 23:59. Every "at least T ago" counts from there.
func dayEnd(s string) (time.Time, bool) {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(day), true
}

func days(d time.Duration) int { return int(d / day) }

func dayOf(t time.Time) string { return t.UTC().Format(dateLayout) }

// judge sets Use, Verdict, Reason and the cleaner forecast.
func (j *judge) judge(f *Finding) {
	if j.seen != nil {
		f.AuditLog = j.seen(f.Namespace, f.Name)
	}
	f.Use, f.useWhy = j.use(f)
	f.guardedUntil = j.guardedUntil(f)
	f.Verdict, f.Reason = f.Use, f.useWhy
	switch b := f.Blocking(); {
	case f.Use == VerdictRestoredOnUse:
		// A restore by a guard is the stronger news: a client the
		// evidence missed is known to exist. A reader is likely it.
		if len(b) > 0 {
			f.Reason += "; read by " + b[0].String() + ", perhaps that client: switch it to a projected token"
		} else if f.readersUnknown != "" {
			f.Reason += "; readers unknown: " + f.readersUnknown
		}
	case len(b) > 0:
		more := ""
		if len(b) > 1 {
			more = fmt.Sprintf(" and %d more", len(b)-1)
		}
		f.Verdict = VerdictSwitchWorkload
		f.Reason = fmt.Sprintf("read by %s%s: switch it to a projected token first", b[0], more)
	case f.readersUnknown != "":
		f.Verdict = VerdictUnknown
		f.Reason = "readers unknown: " + f.readersUnknown
	}
	if f.ServiceAccountState != SAOK {
		f.Reason += fmt.Sprintf("; service account %s is %s, so the token no longer authenticates", f.ServiceAccount, f.ServiceAccountState)
	}
	f.Cleaner = j.forecast(f)
}

// use judges the evidence of use alone.
func (j *judge) use(f *Finding) (string, string) {
	T := j.threshold
	tdays := days(T)
	invalid := f.InvalidSince != ""
	if !invalid && f.Marks != nil && f.Marks.RestoredOnUse != "" {
		return VerdictRestoredOnUse, j.restored(f)
	}
	lastEnd, labelled := dayEnd(f.LastUsed)
	if f.LastUsed != "" && !labelled {
		return VerdictUnknown, fmt.Sprintf("last-used label %q is not a date", f.LastUsed)
	}
	if a := f.AuditLog; a != nil && a.Requests > 0 && j.now.Sub(a.LastSeen) < T {
		ua := ""
		if len(a.UserAgents) > 0 {
			ua = ", user agent " + a.UserAgents[0]
		}
		if invalid {
			return VerdictInUseFailing, fmt.Sprintf("invalid since %s, yet the audit log shows %d request(s), last %s%s: a client is failing", f.InvalidSince, a.Requests, a.LastSeen.UTC().Format(time.RFC3339), ua)
		}
		return VerdictUsed, fmt.Sprintf("the audit log shows %d request(s), last %s%s: move that client to a bound token first", a.Requests, a.LastSeen.UTC().Format(time.RFC3339), ua)
	}
	if invalid {
		invEnd, ok := dayEnd(f.InvalidSince)
		if !ok {
			return VerdictUnknown, fmt.Sprintf("invalid-since label %q is not a date", f.InvalidSince)
		}
		// The apiserver refreshes last-used even when it rejects an
		// invalidated token (pkg/serviceaccount/legacy.go,
		// legacyValidator.Validate, patchSecretWithLastUsedDate): on a
		// Secret this tool invalidated, any change from the value it
		// recorded means a client presented it since, on the day of the
		// invalidation included (a later day is all the rule below can
		// see).
		if f.ours() && f.Marks.LastUsedBefore != "" {
			if was, now := f.Marks.expectedLastUsed(), orLastUsedNone(f.LastUsed); now != was {
				return VerdictInUseFailing, fmt.Sprintf("invalidated by this tool on %s, when last-used %s; now last-used is %s: a client presented it since and was refused; find it before deleting", f.Marks.InvalidatedOn, f.Marks.describeBefore(), now)
			}
		}
		// Someone else's invalidation (the cleaner's, a person's): a
		// later day means a client is presenting it now.
		if labelled && f.LastUsed > f.InvalidSince {
			return VerdictInUseFailing, fmt.Sprintf("invalid since %s, yet used on %s: a client is failing; find it before deleting", f.InvalidSince, f.LastUsed)
		}
		if !j.tracking.Known() {
			return VerdictUnknown, "use is not tracked (" + j.tracking.Unknown + "): cannot tell whether a client still presents it"
		}
		if ks := j.tracking.KnownSince(); !labelled && j.now.Sub(ks) < T {
			return VerdictUnknown, fmt.Sprintf("use tracked only since %s, less than %d days: cannot prove it unused since it was invalidated", dayOf(j.tracking.Since), tdays)
		}
		if j.now.Sub(invEnd) < T {
			return VerdictWait, fmt.Sprintf("invalid since %s; delete from %s if no client presents it", f.InvalidSince, dayOf(invEnd.Add(T)))
		}
		return VerdictDelete, fmt.Sprintf("invalid since %s and no use recorded since: safe to delete", f.InvalidSince)
	}
	if labelled && j.now.Sub(lastEnd) < T {
		return VerdictUsed, fmt.Sprintf("used on %s, within %d days: move that client to a bound token first", f.LastUsed, tdays)
	}
	if !j.tracking.Known() {
		return VerdictUnknown, "use is not tracked (" + j.tracking.Unknown + "): nothing proves it unused"
	}
	if ks := j.tracking.KnownSince(); !labelled && j.now.Sub(ks) < T {
		return VerdictUnknown, fmt.Sprintf("no use recorded, but use is tracked only since %s, less than %d days", dayOf(j.tracking.Since), tdays)
	}
	if age := j.now.Sub(f.Created.Time); age < T {
		return VerdictUnknown, fmt.Sprintf("created %d days ago, less than %d: too new to call unused", days(age), tdays)
	}
	if labelled {
		return VerdictInvalidate, fmt.Sprintf("last used on %s, over %d days ago: safe to invalidate", f.LastUsed, tdays)
	}
	return VerdictInvalidate, fmt.Sprintf("no use recorded since tracking began on %s, over %d days ago: safe to invalidate", dayOf(j.tracking.Since), tdays)
}

// guardedUntil is the Secret's guard day while a guard may still restore
// it: invalid, carrying LabelGuardUntil, and that day not before the
// judgement's day (the server's: a guard compares the guard day with the
// last-used day kube-apiserver writes by its own clock, pkg/guard
// Eligible). A malformed guard day counts as guarded: the policy's
// matches() refuses it, but a person may mean to fix it.
func (j *judge) guardedUntil(f *Finding) string {
	until, ok := "", false
	if f.Marks != nil {
		until, ok = f.Marks.GuardUntil, f.Marks.GuardUntil != ""
	}
	if f.InvalidSince == "" || !ok {
		return ""
	}
	if _, err := time.Parse(dateLayout, until); err == nil && until < dayOf(j.now) {
		return ""
	}
	return until
}

// expectedLastUsed is what LabelLastUsed says (LastUsedNone when absent)
// as long as no client presented the token after this tool invalidated
// it: the recorded value, or none when the invalidation cleared the label.
func (m *Marks) expectedLastUsed() string {
	if m.LastUsedCleared {
		return LastUsedNone
	}
	return m.LastUsedBefore
}

// describeBefore words the recorded last-used value.
func (m *Marks) describeBefore() string {
	switch {
	case m.LastUsedCleared:
		return "said " + m.LastUsedBefore + " and was cleared so that kube-apiserver writes it again"
	case m.LastUsedBefore == LastUsedNone:
		return "was not set"
	}
	return "said " + m.LastUsedBefore
}

func orLastUsedNone(s string) string {
	if s == "" {
		return LastUsedNone
	}
	return s
}

// restored is the reason of a restored-on-use verdict: what happened, and
// how to find the client. After a guard's restore, the client's next
// request is accepted, so kube-apiserver's audit log records it with its
// user agent and source address (the legacy-token annotations are written
// on accepted requests only: see CONTEXT.md and pkg/auditlog).
func (j *judge) restored(f *Finding) string {
	m := f.Marks
	s := "a client presented it on " + m.RestoredOnUse + " after this tool invalidated it"
	if m.InvalidatedOn != "" {
		s += " on " + m.InvalidatedOn
	}
	if m.RestoredBy != "" {
		s += ", and the guard (" + m.RestoredBy + ") restored it"
	} else {
		s += ", and a guard restored it"
	}
	s += ": find that client and move it to a bound token before invalidating it again"
	since, perr := time.Parse(dateLayout, m.RestoredOnUse)
	switch a := f.AuditLog; {
	case a != nil && a.Requests > 0 && (perr != nil || !a.LastSeen.Before(since)):
		s += fmt.Sprintf("; the audit log shows %d request(s) with it, the last at %s", a.Requests, a.LastSeen.UTC().Format(time.RFC3339))
		if len(a.UserAgents) > 0 {
			s += ", user agent " + strings.Join(a.UserAgents, ", ")
		}
		if len(a.SourceIPs) > 0 {
			s += ", from " + strings.Join(a.SourceIPs, ", ")
		}
	case j.seen != nil:
		s += "; the audit log given shows no request with it since " + m.RestoredOnUse + ": read kube-apiserver's audit log from that day on, for the user agent and source address of the next accepted request"
	default:
		s += "; kube-apiserver's audit log from " + m.RestoredOnUse + " on shows the user agent and source address of its next accepted request"
	}
	return s
}

// forecast follows kube-controller-manager's cleaner,
// pkg/controller/serviceaccount/legacy_serviceaccount_token_cleaner.go,
// evaluateSATokens: it does nothing while now < since + 1 day + period;
// then it invalidates a Secret created more than one period ago, whose
// last-used day is before (now - period), whose ServiceAccount exists
// (uid matching when annotated) and lists it by name, and that no pod of
// the namespace names (podutil.VisitPodSecretNames, any phase); it deletes
// an invalid one once its invalid-since day is before (now - period) too.
func (j *judge) forecast(f *Finding) Forecast {
	var fc Forecast
	switch {
	case !j.tracking.Known():
		fc.Never = "cannot tell: " + j.tracking.Unknown
		return fc
	case f.ServiceAccountState != SAOK:
		fc.Never = "its service account is " + f.ServiceAccountState + " (the cleaner skips such tokens)"
		return fc
	case !f.AutoGenerated:
		fc.Never = "manual token: the cleaner only acts on tokens their service account lists"
		return fc
	}
	var pods []string
	var others []string
	for _, r := range f.Readers {
		switch {
		case r.Kind == "pod":
			pods = append(pods, r.String())
		case !r.History:
			others = append(others, r.String())
		}
	}
	if len(pods) > 0 {
		fc.Never = "read by " + pods[0] + ": the cleaner waits until no pod names it"
		return fc
	}
	lastEnd, labelled := dayEnd(f.LastUsed)
	if f.LastUsed != "" && !labelled {
		fc.Never = "malformed last-used label: the cleaner skips it"
		return fc
	}
	P := j.period
	at := j.tracking.KnownSince().Add(P)
	if c := f.Created.Add(P); c.After(at) {
		at = c
	}
	if labelled {
		if u := lastEnd.Add(P); u.After(at) {
			at = u
		}
	}
	if len(others) > 0 {
		fc.Warning = "the cleaner looks at pods only: it will act although " + strings.Join(others, ", ") + " reads it"
	}
	next := func(t time.Time) time.Time {
		if t.Before(j.now) {
			return j.now
		}
		return t
	}
	if f.InvalidSince == "" {
		inv := next(at)
		fc.Invalidate = dayOf(inv)
		// It then labels invalid-since with that day and deletes a period
		// after the end of it.
		fc.Delete = dayOf(inv.Truncate(day).Add(day + P))
		return fc
	}
	if invEnd, ok := dayEnd(f.InvalidSince); ok {
		if d := invEnd.Add(P); d.After(at) {
			at = d
		}
		fc.Delete = dayOf(next(at))
		return fc
	}
	// A malformed invalid-since label is rewritten to the day of the run.
	inv := next(at)
	fc.Invalidate = dayOf(inv)
	fc.Delete = dayOf(inv.Truncate(day).Add(day + P))
	return fc
}

// Include names the verdicts, besides the target one, that apply may act
// on because the user said so.
type Include struct {
	Used    bool // used or in-use-failing: their clients fail
	Unknown bool // nothing proves them unused
	Read    bool // pods and workloads that read them fail
	// Restored: restored-on-use, invalidated again although a client
	// is known to present them.
	Restored bool
}

// Skip results of apply: the verdict does not allow the change.
const (
	OutSkipRead    = "skipped-read"
	OutSkipUsed    = "skipped-used"
	OutSkipUnknown = "skipped-unknown"
	OutSkipVerdict = "skipped-verdict"
	// OutSkipRestored: a guard restored it when a client presented it;
	// invalidating it again needs Include.Restored.
	OutSkipRestored = "skipped-restored-on-use"
	// OutSkipGuarded: delete refuses a Secret still guarded (its guard
	// day not yet past).
	OutSkipGuarded = "skipped-guarded"
)

// Eligible says whether apply in mode may change f, or which skip result
// and reason keep it.
func (f *Finding) Eligible(mode string, inc Include) (string, string) {
	if b := f.Blocking(); len(b) > 0 && !inc.Read {
		return OutSkipRead, "read by " + b[0].String() + "; switch it to a projected token first"
	}
	if f.readersUnknown != "" && !inc.Unknown {
		return OutSkipUnknown, "readers unknown: " + f.readersUnknown
	}
	want := VerdictInvalidate
	if mode == backup.ModeDelete {
		want = VerdictDelete
		// Deletion only ever follows invalidation: a valid token is
		// invalidated first, which restore undoes by removing a label.
		if f.InvalidSince == "" {
			return OutSkipVerdict, "not invalid yet: invalidate it first, delete it once invalid for the threshold"
		}
		// A guard restores a Secret whose token is presented up to its
		// guard day; deleting it before then takes that chance away, and
		// the client the evidence missed fails for good. No include
		// flag lifts this: a revocation (--revoke) takes the guard off.
		if f.guardedUntil != "" {
			return OutSkipGuarded, "still guarded until " + f.guardedUntil + ": a guard may restore it if a client presents it; delete it after that day (a revocation ends the guard at once)"
		}
	}
	if f.Use == VerdictRestoredOnUse {
		if inc.Restored {
			return "", ""
		}
		return OutSkipRestored, f.useReason()
	}
	switch u := f.Use; {
	case u == want:
		return "", ""
	case u == VerdictUnknown:
		if inc.Unknown {
			return "", ""
		}
		return OutSkipUnknown, f.useReason()
	case mode == backup.ModeInvalidate && u == VerdictUsed, mode == backup.ModeDelete && u == VerdictInUseFailing:
		if inc.Used {
			return "", ""
		}
		return OutSkipUsed, f.useReason()
	}
	return OutSkipVerdict, "verdict " + f.Use + ": " + f.useReason()
}

// useReason is the reason of the use verdict, readers aside.
func (f *Finding) useReason() string {
	if f.useWhy == "" {
		return "verdict of use: " + f.Use
	}
	return f.useWhy
}
