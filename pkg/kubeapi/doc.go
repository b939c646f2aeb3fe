// Package kubeapi is the plumbing every domain package uses to talk to the
// API: lists in pages, bounded parallelism, one-line API errors, access
// reviews, the dry-run strategy (kubectl's cmdutil.DryRunStrategy, one type
// end to end), the refusal a declined confirmation returns, the apiserver's
// clock, and the group of the documents the plugin prints.
//
// It knows no domain: it must not import any other package of this module
// except pkg/retry and pkg/internal/text.
package kubeapi
