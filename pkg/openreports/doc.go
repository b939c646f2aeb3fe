// Package openreports writes what the tool found into the audited cluster
// as OpenReports objects (openreports.io/v1alpha1 Report and
// ClusterReport, github.com/openreports/reports-api), the Policy WG
// report's successor that Policy Reporter 3.2+ and Kyverno 1.15+ read.
//
// It maps migrate's findings (pkg/legacy) and doctor's checks (pkg/doctor)
// to results, plans which objects to apply and which to delete (chunks of
// ChunkSize results, a narrowed audit merged into what is there), checks
// that the API is served and that the caller may write it, and writes the
// plan object by object with server-side apply.
//
// It must not import pkg/cmd or cobra: the commands decide when to write,
// and its errors never name a flag.
package openreports
