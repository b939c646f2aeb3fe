package kubeapi

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
	return fmt.Errorf("forbidden: you may not %s %s; ask for RBAC that allows it, nothing was changed", strings.Join(missing, ", "), Where(ns))
}
