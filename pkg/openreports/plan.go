package openreports

import (
	"fmt"
	"sort"
	"strconv"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kinds of report: the value of LabelReport, and part of every name.
// migrate and doctor never write each other's objects.
const (
	KindMigrate = "migrate"
	KindDoctor  = "doctor"
)

const (
	// LabelManagedBy marks every object this tool writes.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelReport says which command wrote it (KindMigrate, KindDoctor).
	LabelReport = "bound-token.kubectl.io/report"
	// LabelChunk is a Report's chunk index, 0 first.
	LabelChunk = "bound-token.kubectl.io/report-chunk"

	// ChunkSize is the most results one Report holds. results is an
	// atomic list: reports-api's config/crd/openreports.io_reports.yaml
	// gives it no x-kubernetes-list-type, and a CRD array without one
	// "Defaults to atomic" (k8s.io/apiextensions-apiserver
	// pkg/apis/apiextensions/v1/types_jsonschema.go, JSONSchemaProps.
	// XListType), which server-side apply replaces whole. One result of
	// ours is about 700 bytes, so a namespace of a few thousand Secrets in
	// one object would pass etcd's request limit (1.5 MiB by default; the
	// e2e's 2,500 Secrets in one Report are refused). 1,000 is Kyverno's
	// number: kyverno/kyverno cmd/reports-controller/main.go, flag
	// reportsChunkSize (default 1000, "Max number of results in generated
	// reports, reports will be split accordingly"), used by
	// pkg/controllers/report/aggregate/namespace/controller.go,
	// controller.reconcile, which names chunk i>0 NAME-i and deletes the
	// reports it no longer expects (cleanReports), as Plan does.
	ChunkSize = 1000
)

// ReportName is the name of chunk i of kind's Report in a namespace.
func ReportName(kind string, i int) string { return fmt.Sprintf("bound-token-%s-%d", kind, i) }

// ClusterReportName is the name of kind's ClusterReport.
func ClusterReportName(kind string) string { return "bound-token-" + kind }

// Selector selects every object kind's runs wrote.
func Selector(kind string) string {
	return LabelManagedBy + "=" + Source + "," + LabelReport + "=" + kind
}

func labels(kind string, chunk int) map[string]string {
	l := map[string]string{LabelManagedBy: Source, LabelReport: kind}
	if chunk >= 0 {
		l[LabelChunk] = strconv.Itoa(chunk)
	}
	return l
}

// Scope is what an audit judged.
type Scope struct {
	// Namespace is the audited namespace; "" means every namespace.
	Namespace string
	// Narrowed says the audit judged only some Secrets of its namespaces
	// (a label selector, Secret names, auto-generated ones only): their
	// results replace those of the same Secrets, the others are kept, and
	// a namespace with none judged is left as it is.
	Narrowed bool
}

// Plan is what a write does: Reports to apply, stale ones to delete, and
// the ClusterReport.
type Plan struct {
	Kind    string
	Apply   []*v1alpha1.Report
	Delete  []Stale
	Cluster *v1alpha1.ClusterReport
}

// Stale is a Report to delete, with its uid as a precondition.
type Stale struct {
	types.NamespacedName
	UID types.UID
}

// PlanMigrate plans migrate's objects from the results judged per
// namespace (judged), the Reports of earlier runs (existing: kind
// migrate's, listed in scope) and the cluster-scope results (basis).
//
// A namespace of the scope ends up with exactly its results, sorted by
// Secret name and cut into chunks of ChunkSize named ReportName(i), and
// every earlier chunk not among them is deleted: a rerun with fewer
// results removes the chunks past the new count, and a namespace with no
// legacy Secret left (in an audit that was not narrowed) loses them all.
// A narrowed audit keeps the earlier results of the Secrets it did not
// judge.
func PlanMigrate(existing []v1alpha1.Report, judged map[string][]v1alpha1.ReportResult, scope Scope, basis []v1alpha1.ReportResult) *Plan {
	p := &Plan{Kind: KindMigrate}
	have := map[string][]*v1alpha1.Report{}
	for i := range existing {
		r := &existing[i]
		if r.Labels[LabelReport] != KindMigrate || r.Labels[LabelManagedBy] != Source {
			continue // not ours: never touched
		}
		if scope.Namespace != "" && r.Namespace != scope.Namespace {
			continue
		}
		have[r.Namespace] = append(have[r.Namespace], r)
	}
	namespaces := map[string]bool{}
	for ns := range have {
		namespaces[ns] = true
	}
	for ns, rs := range judged {
		if len(rs) > 0 {
			namespaces[ns] = true
		}
	}
	order := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		order = append(order, ns)
	}
	sort.Strings(order)
	for _, ns := range order {
		now := judged[ns]
		old := have[ns]
		sort.Slice(old, func(i, j int) bool { return chunkIndex(old[i]) < chunkIndex(old[j]) })
		var results []v1alpha1.ReportResult
		if scope.Narrowed {
			if len(now) == 0 {
				continue // nothing judged here: left as it is
			}
			replaced := map[string]bool{}
			for i := range now {
				replaced[secretName(&now[i])] = true
			}
			for _, r := range old {
				for i := range r.Results {
					if n := secretName(&r.Results[i]); n == "" || !replaced[n] {
						results = append(results, r.Results[i])
					}
				}
			}
			results = append(results, now...)
		} else {
			results = append([]v1alpha1.ReportResult(nil), now...)
		}
		sort.SliceStable(results, func(i, j int) bool { return secretName(&results[i]) < secretName(&results[j]) })
		want := map[string]bool{}
		for i := 0; i*ChunkSize < len(results); i++ {
			chunk := results[i*ChunkSize : min(len(results), (i+1)*ChunkSize)]
			r := &v1alpha1.Report{
				ObjectMeta: metav1.ObjectMeta{Name: ReportName(KindMigrate, i), Namespace: ns, Labels: labels(KindMigrate, i)},
				Source:     Source,
				Summary:    Summarize(chunk),
				Results:    chunk,
			}
			want[r.Name] = true
			p.Apply = append(p.Apply, r)
		}
		for _, r := range old {
			if !want[r.Name] {
				p.Delete = append(p.Delete, Stale{types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, r.UID})
			}
		}
	}
	if basis != nil {
		p.Cluster = clusterReport(KindMigrate, basis)
	}
	return p
}

// PlanDoctor plans doctor's one ClusterReport.
func PlanDoctor(results []v1alpha1.ReportResult) *Plan {
	return &Plan{Kind: KindDoctor, Cluster: clusterReport(KindDoctor, results)}
}

func clusterReport(kind string, results []v1alpha1.ReportResult) *v1alpha1.ClusterReport {
	return &v1alpha1.ClusterReport{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterReportName(kind), Labels: labels(kind, -1)},
		Source:     Source,
		Summary:    Summarize(results),
		Results:    results,
	}
}

// chunkIndex is a Report's chunk label, or a large number when it has
// none or a bad one (sorted last).
func chunkIndex(r *v1alpha1.Report) int {
	i, err := strconv.Atoi(r.Labels[LabelChunk])
	if err != nil || i < 0 {
		return 1 << 30
	}
	return i
}
