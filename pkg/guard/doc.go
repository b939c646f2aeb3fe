// Package guard heals an invalidation a client still needs: when
// kube-apiserver rejects a legacy token whose Secret this tool invalidated
// for clean-up, it writes the Secret's last-used label
// (pkg/serviceaccount/legacy.go, patchSecretWithLastUsedDate), and a guard
// removes the invalid-since label at that moment, so the client sees one
// rejected request, not an outage. Two guards share the rules: a
// MutatingAdmissionPolicy inside kube-apiserver (policy.go), and a
// list/watch run by the user for clusters without admission policies
// (watch.go). The marks they read and write are pkg/legacy's (marks.go).
//
// It must not import pkg/cmd, and nothing of migrate's apply or backup: it
// acts on Secrets a previous run marked, whatever ran it.
package guard
