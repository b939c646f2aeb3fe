package cmd

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/openreports/reports-api/pkg/client/clientset/versioned"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/openreports"
)

// reportFlagUsage is --report's help, shared by migrate and doctor.
const reportFlagUsage = "Also write the results into the cluster as OpenReports objects (openreports.io/v1alpha1 Report and ClusterReport, read by Policy Reporter), by server-side apply; the CRDs must be installed. With --contexts or --all-contexts, into each cluster."

// reportSink gathers an audit's results per namespace, as the audit
// judges each Secret, for migrate --report. Only the results are kept
// (about 700 bytes a Secret), never the Secrets.
type reportSink struct {
	now     time.Time
	results map[string][]v1alpha1.ReportResult
	info    *legacy.ScanInfo
}

func newReportSink(now time.Time) *reportSink {
	return &reportSink{now: now, results: map[string][]v1alpha1.ReportResult{}}
}

func (s *reportSink) add(f *legacy.Finding) {
	if s != nil {
		s.results[f.Namespace] = append(s.results[f.Namespace], openreports.SecretResult(f, s.now))
	}
}

// reportScope is what migrate's audit judged, for the merge with the
// Reports of earlier runs.
func (o *MigrateOptions) reportScope(ns string) openreports.Scope {
	return openreports.Scope{Namespace: ns, Narrowed: len(o.Names) > 0 || o.Selector != "" || o.AutoOnly}
}

// writeReports plans and writes migrate's objects from the sink's
// results: the Reports of the scope's namespaces and the ClusterReport.
func writeReports(ctx context.Context, c versioned.Interface, s *reportSink, scope openreports.Scope) (openreports.Written, error) {
	existing, err := openreports.Existing(ctx, c, openreports.KindMigrate, scope.Namespace)
	if err != nil {
		return openreports.Written{}, err
	}
	p := openreports.PlanMigrate(existing, s.results, scope, openreports.BasisResults(s.info, s.now))
	return openreports.Write(ctx, c, p)
}

// reportWritten says on stderr what a write did, or, when it failed
// midway, what it wrote before; the error carries exit 1.
func reportWritten(w io.Writer, prefix string, done openreports.Written, err error) error {
	if err != nil {
		return failedErrorf("%sOpenReports: %v; written before it: %s", prefix, err, done)
	}
	fmt.Fprintf(w, "%sOpenReports: wrote %s.\n", prefix, done)
	return nil
}

// lockedWriter serializes the lines clusters of a fleet write at once.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
