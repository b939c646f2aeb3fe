package switcher

import (
	"context"
	"sort"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"k8s.io/client-go/kubernetes"
)

// CheckAccess asks the apiserver (SelfSubjectAccessReview) whether the
// caller may get and patch every kind of workload that the switchable
// plans would change, so that a forbidden run stops before its first
// backup rather than after half the workloads. Permission everywhere is
// asked first; without it, each namespace involved is asked (RBAC granted
// per namespace). The error is one line naming what is missing and where.
func CheckAccess(ctx context.Context, client kubernetes.Interface, plans []*Plan) error {
	byNS := map[string]map[string]bool{}
	all := map[string]bool{}
	for _, p := range plans {
		if !p.Switchable() {
			continue
		}
		if byNS[p.Namespace] == nil {
			byNS[p.Namespace] = map[string]bool{}
		}
		byNS[p.Namespace][p.Workload.Type.ResourceGroup()] = true
		all[p.Workload.Type.ResourceGroup()] = true
	}
	if len(all) == 0 {
		return nil
	}
	perms := func(resources map[string]bool) []kubeapi.Permission {
		var rs []string
		for r := range resources {
			rs = append(rs, r)
		}
		sort.Strings(rs)
		var out []kubeapi.Permission
		for _, r := range rs {
			// get: a resumed run, a conflict and a rollout read the
			// workload again.
			out = append(out, kubeapi.Permission{Verb: "get", Resource: r}, kubeapi.Permission{Verb: "patch", Resource: r})
		}
		return out
	}
	if len(byNS) > 1 && kubeapi.CheckAccess(ctx, client, "", perms(all)) == nil {
		return nil
	}
	nss := make([]string, 0, len(byNS))
	for ns := range byNS {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		if err := kubeapi.CheckAccess(ctx, client, ns, perms(byNS[ns])); err != nil {
			return err
		}
	}
	return nil
}
