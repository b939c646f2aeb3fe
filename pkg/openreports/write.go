package openreports

import (
	"context"
	"fmt"
	"strings"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	ac "github.com/openreports/reports-api/pkg/client/applyconfiguration/openreports.io/v1alpha1"
	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// GroupVersion is the API the objects belong to.
var GroupVersion = v1alpha1.SchemeGroupVersion

// Needs says what a write will touch, for Preflight.
type Needs struct {
	// Reports: namespaced Reports in Namespace ("" = every namespace),
	// listed, applied and deleted.
	Reports   bool
	Namespace string
	// ClusterReports: one ClusterReport, applied.
	ClusterReports bool
}

// Preflight checks, before anything is written, that the cluster serves
// the OpenReports API and that the caller may write what need names. It
// asks discovery as Policy Reporter does before it reads the API
// (kyverno/policy-reporter pkg/config/resolver.go, Resolver.
// OpenReportsClient: ServerResourcesForGroupVersion of openreports.io/
// v1alpha1), then SelfSubjectAccessReviews for each verb a write uses:
// list (the earlier chunks), create and patch (a server-side apply
// creates an object that is not there and patches one that is), delete
// (stale chunks). Its error is one line naming what is missing.
func Preflight(ctx context.Context, kube kubernetes.Interface, need Needs) error {
	gv := GroupVersion.String()
	rl, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*metav1.APIResourceList, error) {
		return kube.Discovery().ServerResourcesForGroupVersion(gv)
	})
	served := map[string]bool{}
	if err == nil {
		for _, r := range rl.APIResources {
			served[r.Name] = true
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("cannot tell whether the cluster serves %s: %v; nothing was written", gv, err)
	}
	var missing []string
	if need.Reports && !served["reports"] {
		missing = append(missing, "reports."+GroupVersion.Group)
	}
	if need.ClusterReports && !served["clusterreports"] {
		missing = append(missing, "clusterreports."+GroupVersion.Group)
	}
	if len(missing) > 0 {
		return fmt.Errorf("the cluster does not serve %s (%s): install the OpenReports CRDs (github.com/openreports/reports-api, config/crd) first; nothing was written",
			strings.Join(missing, " and "), gv)
	}
	var perms []kubeapi.Permission
	if need.Reports {
		for _, v := range []string{"list", "create", "patch", "delete"} {
			perms = append(perms, kubeapi.Permission{Verb: v, Resource: "reports." + GroupVersion.Group})
		}
		if err := kubeapi.CheckAccess(ctx, kube, need.Namespace, perms); err != nil {
			return written(err)
		}
	}
	if need.ClusterReports {
		perms = nil
		for _, v := range []string{"create", "patch"} {
			perms = append(perms, kubeapi.Permission{Verb: v, Resource: "clusterreports." + GroupVersion.Group})
		}
		if err := kubeapi.CheckAccess(ctx, kube, "", perms); err != nil {
			return written(err)
		}
	}
	return nil
}

// written rewords CheckAccess's "nothing was changed" for a write of
// reports, where the audit itself ran.
func written(err error) error {
	return fmt.Errorf("%s", strings.Replace(err.Error(), "nothing was changed", "nothing was written", 1))
}

// Existing lists the Reports kind's earlier runs wrote in ns ("" = every
// namespace), page by page: a chunk of 1,000 results is most of a
// megabyte.
func Existing(ctx context.Context, c versioned.Interface, kind, ns string) ([]v1alpha1.Report, error) {
	var out []v1alpha1.Report
	lo := metav1.ListOptions{LabelSelector: Selector(kind), Limit: 20}
	err := kubeapi.EachPage(ctx, lo, func(ctx context.Context, lo metav1.ListOptions) (*v1alpha1.ReportList, error) {
		l, err := c.OpenreportsV1alpha1().Reports(ns).List(ctx, lo)
		if err != nil {
			return nil, kubeapi.DescribeAPIError(err, "list", "reports."+GroupVersion.Group, ns)
		}
		return l, nil
	}, func(l *v1alpha1.ReportList) error {
		out = append(out, l.Items...)
		return nil
	})
	return out, err
}

// Written counts what a write did.
type Written struct {
	// Reports applied, the results in them, and their namespaces.
	Reports, Results, Namespaces int
	// Deleted stale Reports.
	Deleted int
	// ClusterReport applied (its name) and its results.
	ClusterReport  string
	ClusterResults int
}

// String says it in one line; a write of only a ClusterReport (doctor's)
// names only that.
func (w Written) String() string {
	if w.Reports == 0 && w.Deleted == 0 && w.ClusterReport != "" {
		return fmt.Sprintf("ClusterReport %s (%d result%s)", w.ClusterReport, w.ClusterResults, plural(w.ClusterResults))
	}
	s := fmt.Sprintf("%d Report%s (%d result%s) in %d namespace%s, %d stale Report%s deleted",
		w.Reports, plural(w.Reports), w.Results, plural(w.Results), w.Namespaces, plural(w.Namespaces), w.Deleted, plural(w.Deleted))
	if w.ClusterReport != "" {
		s += fmt.Sprintf(", ClusterReport %s (%d result%s)", w.ClusterReport, w.ClusterResults, plural(w.ClusterResults))
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Write carries out p object by object: every Report by server-side
// apply (field manager FieldManager, forced: the objects are this tool's
// own, and a forced apply takes back a field someone edited), then the
// stale chunks are deleted (each with its uid as precondition; one
// already gone is fine), so that a reader never sees a Secret's result
// missing, then the ClusterReport. It stops at the first error and
// returns what was written until then.
func Write(ctx context.Context, c versioned.Interface, p *Plan) (Written, error) {
	var w Written
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	nss := map[string]bool{}
	for _, r := range p.Apply {
		cfg := reportApply(r)
		if err := call(ctx, func(ctx context.Context) error {
			_, err := c.OpenreportsV1alpha1().Reports(r.Namespace).Apply(ctx, cfg, opts)
			return err
		}); err != nil {
			return w, fmt.Errorf("apply report %s/%s: %w", r.Namespace, r.Name, kubeapi.DescribeAPIError(err, "patch", "reports."+GroupVersion.Group, r.Namespace))
		}
		w.Reports++
		w.Results += len(r.Results)
		nss[r.Namespace] = true
		w.Namespaces = len(nss)
	}
	for _, s := range p.Delete {
		pre := metav1.DeleteOptions{}
		if s.UID != "" {
			uid := s.UID
			pre.Preconditions = &metav1.Preconditions{UID: &uid}
		}
		err := call(ctx, func(ctx context.Context) error {
			return c.OpenreportsV1alpha1().Reports(s.Namespace).Delete(ctx, s.Name, pre)
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return w, fmt.Errorf("delete stale report %s/%s: %w", s.Namespace, s.Name, kubeapi.DescribeAPIError(err, "delete", "reports."+GroupVersion.Group, s.Namespace))
		}
		if err == nil {
			w.Deleted++
		}
	}
	if cr := p.Cluster; cr != nil {
		cfg := clusterReportApply(cr)
		if err := call(ctx, func(ctx context.Context) error {
			_, err := c.OpenreportsV1alpha1().ClusterReports().Apply(ctx, cfg, opts)
			return err
		}); err != nil {
			return w, fmt.Errorf("apply clusterreport %s: %w", cr.Name, kubeapi.DescribeAPIError(err, "patch", "clusterreports."+GroupVersion.Group, ""))
		}
		w.ClusterReport, w.ClusterResults = cr.Name, len(cr.Results)
	}
	return w, nil
}

// call runs one write, repeated on transient errors: an apply of the
// same object, or a delete guarded by a uid, is safe to repeat.
func call(ctx context.Context, fn func(context.Context) error) error {
	_, err := retry.Do(ctx, retry.Default, fn)
	return err
}

func reportApply(r *v1alpha1.Report) *ac.ReportApplyConfiguration {
	return ac.Report(r.Name, r.Namespace).WithLabels(r.Labels).WithSource(r.Source).
		WithSummary(summaryApply(r.Summary)).WithResults(resultsApply(r.Results)...)
}

func clusterReportApply(r *v1alpha1.ClusterReport) *ac.ClusterReportApplyConfiguration {
	return ac.ClusterReport(r.Name).WithLabels(r.Labels).WithSource(r.Source).
		WithSummary(summaryApply(r.Summary)).WithResults(resultsApply(r.Results)...)
}

func summaryApply(s v1alpha1.ReportSummary) *ac.ReportSummaryApplyConfiguration {
	return ac.ReportSummary().WithPass(s.Pass).WithFail(s.Fail).WithWarn(s.Warn).WithError(s.Error).WithSkip(s.Skip)
}

func resultsApply(rs []v1alpha1.ReportResult) []*ac.ReportResultApplyConfiguration {
	out := make([]*ac.ReportResultApplyConfiguration, len(rs))
	for i := range rs {
		r := &rs[i]
		a := ac.ReportResult().WithSource(r.Source).WithPolicy(r.Policy).WithTimestamp(r.Timestamp).WithResult(r.Result)
		if r.Rule != "" {
			a.WithRule(r.Rule)
		}
		if r.Category != "" {
			a.WithCategory(r.Category)
		}
		if r.Severity != "" {
			a.WithSeverity(r.Severity)
		}
		if len(r.Subjects) > 0 {
			a.WithSubjects(r.Subjects...)
		}
		if r.Description != "" {
			a.WithDescription(r.Description)
		}
		if len(r.Properties) > 0 {
			a.WithProperties(r.Properties)
		}
		out[i] = a
	}
	return out
}
