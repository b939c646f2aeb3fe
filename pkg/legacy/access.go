package legacy

import (
	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
)

// ApplyPermissions lists what apply needs, so that a missing one stops it
// before the first backup rather than after half the Secrets.
func ApplyPermissions(mode string) []kubeapi.Permission {
	// get secrets: a resumed run and a write whose answer was lost read
	// the Secret again (getSecret).
	p := []kubeapi.Permission{{Verb: "list", Resource: "secrets"}, {Verb: "get", Resource: "secrets"}, {Verb: "list", Resource: "serviceaccounts"}, {Verb: "list", Resource: "pods"}}
	if mode == backup.ModeDelete {
		return append(p, kubeapi.Permission{Verb: "delete", Resource: "secrets"}, kubeapi.Permission{Verb: "get", Resource: "serviceaccounts"}, kubeapi.Permission{Verb: "patch", Resource: "serviceaccounts"})
	}
	return append(p, kubeapi.Permission{Verb: "patch", Resource: "secrets"})
}

// RestorePermissions lists what restore needs.
func RestorePermissions() []kubeapi.Permission {
	// list: restore reads the live state of the backup's namespaces first
	// (readLive).
	return []kubeapi.Permission{{Verb: "get", Resource: "secrets"}, {Verb: "list", Resource: "secrets"}, {Verb: "create", Resource: "secrets"}, {Verb: "patch", Resource: "secrets"},
		{Verb: "get", Resource: "serviceaccounts"}, {Verb: "list", Resource: "serviceaccounts"}, {Verb: "patch", Resource: "serviceaccounts"}}
}
