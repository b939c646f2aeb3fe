// Package guard heals an invalidation a client still needs: when
// kube-apiserver rejects a legacy token whose Secret this tool invalidated
// for clean-up, it writes the Secret's last-used label
// (pkg/serviceaccount/legacy.go, patchSecretWithLastUsedDate), and a guard
// removes the invalid-since label at that moment, so the client sees one
// rejected request, not an outage. Two guards share the rules: a
// MutatingAdmissionPolicy inside kube-apiserver (policy.go), and a
// list/watch run by the user for clusters without admission policies
// (watch.go). The marks they read and write are pkg/legacy's (marks.go).
// Waves (waves.go) watch what an invalidation run just did with the same
// rule: they are handed the run as a function and read only its outcomes.
//
// It must not import pkg/cmd or pkg/doctor, and it never calls migrate's
// apply or writes a backup itself: the guards act on Secrets a previous run
// marked, whatever ran it.
package guard
