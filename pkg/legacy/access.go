package legacy

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Permission is one verb on one resource: a core one ("secrets") or one
// of a group, as kubectl spells it ("deployments.apps").
type Permission struct{ Verb, Resource string }

// ApplyPermissions lists what apply needs, so that a missing one stops it
// before the first backup rather than after half the Secrets.
func ApplyPermissions(mode string) []Permission {
	// get secrets: a resumed run and a write whose answer was lost read
	// the Secret again (getSecret).
	p := []Permission{{"list", "secrets"}, {"get", "secrets"}, {"list", "serviceaccounts"}, {"list", "pods"}}
	if mode == ModeDelete {
		return append(p, Permission{"delete", "secrets"}, Permission{"get", "serviceaccounts"}, Permission{"patch", "serviceaccounts"})
	}
	return append(p, Permission{"patch", "secrets"})
}

// RestorePermissions lists what restore needs.
func RestorePermissions() []Permission {
	// list: restore reads the live state of the backup's namespaces first
	// (readLive).
	return []Permission{{"get", "secrets"}, {"list", "secrets"}, {"create", "secrets"}, {"patch", "secrets"},
		{"get", "serviceaccounts"}, {"list", "serviceaccounts"}, {"patch", "serviceaccounts"}}
}

// CheckAccess asks the apiserver (SelfSubjectAccessReview) whether the
// caller holds every permission in namespace ns ("" = all namespaces) and
// names all that are missing in one line.
func CheckAccess(ctx context.Context, client kubernetes.Interface, ns string, perms []Permission) error {
	var missing []string
	for _, p := range perms {
		resource, group, _ := strings.Cut(p.Resource, ".")
		// A review stores nothing: safe to repeat.
		r, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*authorizationv1.SelfSubjectAccessReview, error) {
			return client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns, Verb: p.Verb, Resource: resource, Group: group,
				}},
			}, metav1.CreateOptions{})
		})
		if err != nil {
			return fmt.Errorf("cannot check permissions (SelfSubjectAccessReview): %v", err)
		}
		if !r.Status.Allowed {
			missing = append(missing, p.Verb+" "+p.Resource)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	where := "in namespace " + ns
	if ns == "" {
		where = "across all namespaces"
	}
	return fmt.Errorf("forbidden: you may not %s %s; ask for RBAC that allows it, nothing was changed", strings.Join(missing, ", "), where)
}
