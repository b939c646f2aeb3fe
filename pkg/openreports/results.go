package openreports

import (
	"strconv"
	"strings"
	"time"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/doctor"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

const (
	// Source names the tool, on every object and every result: Policy
	// Reporter files a result under its result-level source
	// (kyverno/policy-reporter pkg/database/model.go,
	// MapPolicyReportFilter reads res.Source) and a report under its
	// own, or its first result's when empty (pkg/openreports/
	// reports_adapter.go, ReportAdapter.GetSource).
	Source = "kubectl-bound-token"
	// FieldManager is the server-side apply field manager of every write.
	FieldManager = "kubectl-bound-token"

	// PolicyLegacyToken is the policy of migrate's results: "no
	// long-lived ServiceAccount token Secret"; the rule is the verdict.
	PolicyLegacyToken = "legacy-serviceaccount-token"
	// PolicyLegacyTokenBasis is the policy of migrate's cluster-scope
	// results: what every verdict rests on (rules RuleTracking,
	// RuleReaders).
	PolicyLegacyTokenBasis = "legacy-serviceaccount-token-basis"
	// RuleTracking: since when kube-apiserver tracks legacy token use.
	RuleTracking = "use-tracking"
	// RuleReaders: readers that could not be listed (their namespaces'
	// Secrets are judged unknown).
	RuleReaders = "readers-unlisted"
	// PolicyDoctor is the policy of doctor's results; the rule is the
	// check's name.
	PolicyDoctor = "bound-token-doctor"

	// Category groups every result in a dashboard.
	Category = "ServiceAccount tokens"
)

// outcome is how one verdict shows in a report.
type outcome struct {
	result   v1alpha1.Result
	severity v1alpha1.ResultSeverity
}

// verdictOutcomes maps migrate's verdicts to a result and a severity.
//
// The result says what is left to do, in the schema's own words
// (apis/openreports.io/v1alpha1/report_types.go, Result):
//   - fail ("the policy requirements are not met"): a long-lived token
//     Secret that migrate --apply may change now, as the verdict proves
//     it unused: invalidate, and delete (invalid long enough, no use since).
//   - warn ("not met and the policy is not scored"): a Secret that is still
//     needed or whose client fails, so that no tool may fix it before a
//     person moves its client: used, switch-workload, in-use-failing,
//     restored-on-use.
//   - pass ("the requirements are met"): wait, a token already rejected by
//     the apiserver and on its way to deletion: nothing to do but wait.
//   - skip ("the policy was not selected based on ... applicability"):
//     unknown, where the evidence cannot tell and no judgement was made;
//     not error, which says the evaluation itself failed: the audit ran,
//     the cluster's facts just do not decide it (the reason says why).
//
// The severity is the exposure of the token itself: high while a client
// relies on it or a pod reads it (a leak of a live, never-expiring
// credential that something uses, or a client failing now), medium for a
// valid token nobody is known to use (invalidate, unknown), low for an
// invalid Secret left to delete, info for one already waiting out its
// period.
var verdictOutcomes = map[string]outcome{
	legacy.VerdictInvalidate:     {v1alpha1.Result("fail"), v1alpha1.ResultSeverity("medium")},
	legacy.VerdictDelete:         {v1alpha1.Result("fail"), v1alpha1.ResultSeverity("low")},
	legacy.VerdictUsed:           {v1alpha1.Result("warn"), v1alpha1.ResultSeverity("high")},
	legacy.VerdictSwitchWorkload: {v1alpha1.Result("warn"), v1alpha1.ResultSeverity("high")},
	legacy.VerdictInUseFailing:   {v1alpha1.Result("warn"), v1alpha1.ResultSeverity("high")},
	legacy.VerdictRestoredOnUse:  {v1alpha1.Result("warn"), v1alpha1.ResultSeverity("high")},
	legacy.VerdictWait:           {v1alpha1.Result("pass"), v1alpha1.ResultSeverity("info")},
	legacy.VerdictUnknown:        {v1alpha1.Result("skip"), v1alpha1.ResultSeverity("medium")},
}

// Outcome is the result and severity of a verdict; a verdict this
// package does not know is skip/info.
func Outcome(verdict string) (v1alpha1.Result, v1alpha1.ResultSeverity) {
	if o, ok := verdictOutcomes[verdict]; ok {
		return o.result, o.severity
	}
	return "skip", "info"
}

// Timestamp is t as the schema wants it: reports-api's
// apis/openreports.io/v1alpha1/report_types.go types ReportResult.
// Timestamp as metav1.Timestamp, whose CRD schema requires seconds and
// nanos (an object, not an RFC 3339 string).
func Timestamp(t time.Time) metav1.Timestamp {
	return metav1.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

// SecretResult is one legacy token Secret's result, judged at now. Only
// metadata goes in: the audit never reads a Secret's data.
func SecretResult(f *legacy.Finding, now time.Time) v1alpha1.ReportResult {
	res, sev := Outcome(f.Verdict)
	origin := "manual"
	if f.AutoGenerated {
		origin = "auto"
	}
	props := map[string]string{
		"verdict":             f.Verdict,
		"serviceAccount":      f.ServiceAccount,
		"serviceAccountState": f.ServiceAccountState,
		"origin":              origin,
		"created":             f.Created.UTC().Format("2006-01-02"),
	}
	set := func(k, v string) {
		if v != "" {
			props[k] = v
		}
	}
	set("lastUsed", f.LastUsed)
	set("invalidSince", f.InvalidSince)
	if len(f.Readers) > 0 {
		rs := make([]string, len(f.Readers))
		for i, r := range f.Readers {
			rs[i] = r.String()
		}
		props["readers"] = strings.Join(rs, "; ")
	}
	c := f.Cleaner
	set("cleanerInvalidates", c.Invalidate)
	set("cleanerDeletes", c.Delete)
	set("cleanerNever", c.Never)
	set("cleanerWarning", c.Warning)
	if a := f.AuditLog; a != nil {
		props["auditLogRequests"] = strconv.Itoa(a.Requests)
		props["auditLogLastSeen"] = a.LastSeen.UTC().Format(time.RFC3339)
		set("auditLogUserAgents", strings.Join(a.UserAgents, "; "))
	}
	if m := f.Marks; m != nil {
		set("invalidatedOn", m.InvalidatedOn)
		set("guardUntil", m.GuardUntil)
		set("restoredOnUse", m.RestoredOnUse)
	}
	return v1alpha1.ReportResult{
		Source:      Source,
		Policy:      PolicyLegacyToken,
		Rule:        f.Verdict,
		Category:    Category,
		Severity:    sev,
		Result:      res,
		Timestamp:   Timestamp(now),
		Subjects:    []corev1.ObjectReference{{APIVersion: "v1", Kind: "Secret", Namespace: f.Namespace, Name: f.Name, UID: types.UID(f.UID)}},
		Description: f.Reason,
		Properties:  props,
	}
}

// BasisResults are migrate's cluster-scope results, for its ClusterReport:
// what every verdict of the run rests on. Policy Reporter counts results,
// not a report's summary (kyverno/policy-reporter pkg/database/model.go,
// MapPolicyReportResults and MapPolicyReportFilter, one row per result),
// so these are results too:
//   - RuleTracking, on the tracking ConfigMap: pass when use is tracked for
//     at least the threshold (a missing last-used label then proves no
//     use), warn when for less or not at all (verdicts are then unknown);
//     its properties hold the tracking start, the threshold and the
//     cleaner period the forecasts use, and the workload APIs read;
//   - RuleReaders, one error per kind of reader that could not be listed:
//     the Secrets it may read could not be judged ("the policy could not
//     be evaluated").
func BasisResults(info *legacy.ScanInfo, now time.Time) []v1alpha1.ReportResult {
	if info == nil {
		return nil
	}
	t := info.Tracking
	props := map[string]string{
		"thresholdDays":     strconv.Itoa(info.ThresholdDays),
		"cleanupPeriodDays": strconv.Itoa(info.CleanupPeriodDays),
	}
	if len(info.WorkloadAPIs) > 0 {
		props["workloadAPIs"] = strings.Join(info.WorkloadAPIs, ", ")
	}
	res, sev, msg := v1alpha1.Result("warn"), v1alpha1.ResultSeverity("medium"), "use of legacy tokens is not tracked: "+t.Unknown+"; verdicts that need it are unknown"
	if t.Known() {
		known := t.KnownSince()
		props["trackingSince"] = t.Day
		props["proofFrom"] = known.UTC().Format("2006-01-02")
		msg = "use of legacy tokens is tracked since " + t.Day + "; a missing last-used label proves no use only from " + props["proofFrom"]
		if !known.After(now.Add(-time.Duration(info.ThresholdDays) * 24 * time.Hour)) {
			res, sev = "pass", "info"
		} else {
			res, sev = "warn", "low"
			msg += ", less than " + props["thresholdDays"] + " days ago: Secrets with no last-used label are unknown"
		}
	}
	out := []v1alpha1.ReportResult{{
		Source: Source, Policy: PolicyLegacyTokenBasis, Rule: RuleTracking, Category: Category,
		Result: res, Severity: sev, Timestamp: Timestamp(now), Description: msg, Properties: props,
		Subjects: []corev1.ObjectReference{{APIVersion: "v1", Kind: "ConfigMap", Namespace: legacy.TrackingNamespace, Name: legacy.TrackingConfigMap}},
	}}
	for _, w := range info.Warnings {
		out = append(out, v1alpha1.ReportResult{
			Source: Source, Policy: PolicyLegacyTokenBasis, Rule: RuleReaders, Category: Category,
			Result: "error", Severity: "medium", Timestamp: Timestamp(now), Description: w,
		})
	}
	return out
}

// DoctorResults are doctor's checks as results: the statuses are the
// schema's own (pass, warn, fail, skip); a failed check is high, a
// warning medium, the rest info; the fix is the property "fix".
func DoctorResults(checks []doctor.Check, now time.Time) []v1alpha1.ReportResult {
	out := make([]v1alpha1.ReportResult, 0, len(checks))
	for _, c := range checks {
		sev := v1alpha1.ResultSeverity("info")
		switch c.Status {
		case doctor.Fail:
			sev = "high"
		case doctor.Warn:
			sev = "medium"
		}
		r := v1alpha1.ReportResult{
			Source: Source, Policy: PolicyDoctor, Rule: c.Name, Category: Category,
			Result: v1alpha1.Result(c.Status), Severity: sev, Timestamp: Timestamp(now), Description: c.Message,
		}
		if c.Fix != "" {
			r.Properties = map[string]string{"fix": c.Fix}
		}
		out = append(out, r)
	}
	return out
}

// Summarize counts results by result into the schema's summary
// (report_types.go, ReportSummary: pass, fail, warn, error, skip), as
// Kyverno does for its reports (kyverno/kyverno pkg/utils/report/
// results.go, SetResults calls CalculateSummary over the results).
func Summarize(results []v1alpha1.ReportResult) v1alpha1.ReportSummary {
	var s v1alpha1.ReportSummary
	for _, r := range results {
		switch r.Result {
		case "pass":
			s.Pass++
		case "fail":
			s.Fail++
		case "warn":
			s.Warn++
		case "error":
			s.Error++
		case "skip":
			s.Skip++
		}
	}
	return s
}

// secretName is the Secret a migrate result is about ("" if none).
func secretName(r *v1alpha1.ReportResult) string {
	for _, s := range r.Subjects {
		if s.Kind == "Secret" {
			return s.Name
		}
	}
	return ""
}
