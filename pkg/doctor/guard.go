package doctor

import (
	"context"
	"fmt"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
)

// guardCheck says whether the guard inside kube-apiserver is installed
// and whether it acts, proved as guard status proves it (pkg/guard,
// Status and Prove) but read-only: the dry-run patch goes to a Secret this
// tool invalidated, never to a throwaway one doctor would have to create.
func guardCheck(ctx context.Context, c *guard.Cluster) Check {
	name := "guard"
	if c == nil || c.Dynamic == nil {
		return Check{name, Skip, "no dynamic client to read the guard's policy with", ""}
	}
	st, err := guard.Status(ctx, c, guard.StatusOptions{})
	if err != nil {
		return Check{name, Warn, "guard: unknown, " + text.OneLine(err.Error(), 300), "allow get on " + guard.Group + " mutatingadmissionpolicies and their bindings to who runs doctor"}
	}
	counts := ""
	guarded := -1
	if st.Counts != nil {
		guarded = st.Counts.Guarded
		counts = fmt.Sprintf("; %d legacy token Secret%s invalid with a guard day, %d restored", st.Counts.Guarded, text.Plural(st.Counts.Guarded), st.Counts.Restored)
	}
	switch {
	case st.ServedVersion == "" && guarded == 0:
		return Check{name, Pass, "not installed (the policy API is not served) and no Secret this tool invalidated is waiting for a guard" + counts, ""}
	case st.ServedVersion == "":
		return Check{name, Warn, "not installed: MutatingAdmissionPolicy is not served here, so nothing restores an invalidated token its client still presents" + counts,
			"kubectl bound-token guard watch (runs beside the cluster)"}
	case st.Policy == guard.ObjectForeign || st.Binding == guard.ObjectForeign:
		return Check{name, Warn, st.Describe() + counts, "rename or delete that object, then kubectl bound-token guard install"}
	case !st.Installed && guarded == 0:
		return Check{name, Pass, "not installed, and no Secret this tool invalidated is waiting for a guard (kubectl bound-token guard install before migrate --apply)" + counts, ""}
	case !st.Installed:
		return Check{name, Warn, st.Describe() + ": nothing restores an invalidated token its client still presents" + counts, "kubectl bound-token guard install"}
	}
	update := ""
	if !st.Current {
		update = "kubectl bound-token guard install (updates the policy to this version's)"
	}
	switch p := st.Proof; p.State {
	case guard.Acting:
		msg := st.Describe() + " and acting: kube-apiserver's own last-used patch (dryRun=All, as " + guard.APIServerUser + ") on Secret " + p.Secret + " came back restored" + counts
		if update != "" {
			return Check{name, Warn, msg, update}
		}
		return Check{name, Pass, msg, ""}
	case guard.NotActing:
		return Check{name, Fail, st.Describe() + " but NOT acting: " + p.Reason + counts,
			"enable kube-apiserver's MutatingAdmissionPolicy admission plugin, or kubectl bound-token guard uninstall and run guard watch"}
	}
	fix := "kubectl bound-token guard status proves it (with a throwaway Secret when none of this tool's can carry the proof), as a user who may impersonate " + guard.APIServerUser
	if update != "" {
		fix = update
	}
	return Check{name, Warn, st.Describe() + ", unproven: " + st.Proof.Reason + counts, fix}
}
