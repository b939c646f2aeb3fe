package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
)

var (
	guardStatusLong = templates.LongDesc(`
		Say whether the guard is installed, prove whether it acts, and count the legacy token
		Secrets it guards (invalid, with a guard day) and the ones a guard restored.

		The proof sends kube-apiserver's own last-used patch, byte for byte, as
		kube-apiserver's identity (impersonating user system:apiserver in group
		system:masters) with dryRun=All, to a Secret the policy must restore, and reads the
		answer: restored means acting. Nothing is stored. It needs the right to impersonate
		them (checked by SelfSubjectAccessReview first); without it the answer is "unproven".
		The patch goes to a legacy token Secret this tool invalidated for clean-up; when
		there is none, to a throwaway Secret (Opaque, no data, labelled
		bound-token.kubectl.io/guard-probe) created in the namespace (-n) and deleted right
		after; --throwaway=false says "unproven" instead.

		Exit codes: 0 installed and acting, or installed and unproven (said on stderr);
		1 not installed, or installed and not acting; 2 bad flags or an unreachable cluster.`)

	guardStatusExample = templates.Examples(`
		# Is the guard installed, and does it act?
		kubectl bound-token guard status

		# Without creating a throwaway Secret for the proof
		kubectl bound-token guard status --throwaway=false

		# As JSON: the proof's state and the counts
		kubectl bound-token guard status -o jsonpath='{.proof.state} {.counts.guarded}'`)
)

// GuardStatusOptions holds what `guard status` needs.
type GuardStatusOptions struct {
	Throwaway bool
	guardPolicyOptions
}

func NewCmdGuardStatus(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GuardStatusOptions{Throwaway: true, guardPolicyOptions: guardPolicyOptions{PrintFlags: newResultPrintFlags(), IOStreams: streams}}
	cmd := &cobra.Command{
		Use:                   "status [--throwaway=false] [-o json|yaml|jsonpath=...]",
		DisableFlagsInUseLine: true,
		Short:                 "Say whether the guard is installed, prove it acts, count guarded and restored Secrets",
		Long:                  guardStatusLong,
		Example:               guardStatusExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE:                  runE(o, f),
	}
	cmd.Flags().BoolVar(&o.Throwaway, "throwaway", o.Throwaway, "When no Secret this tool invalidated can carry the proof, create an empty Secret in the namespace for it and delete it after (false: unproven).")
	addPrintFlags(cmd, o.PrintFlags)
	return cmd
}

func (o *GuardStatusOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	return o.complete(f, cmd, o.Validate, true)
}

func (o *GuardStatusOptions) Validate() error { return nil }

func (o *GuardStatusOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := guard.Status(ctx, o.Cluster, guard.StatusOptions{Prove: guard.ProveOptions{Throwaway: o.Throwaway, Namespace: o.Namespace}})
	if err != nil {
		if clusterUnreachable(err) {
			return usageErrorf("%w", unreachable(err, "nothing was checked"))
		}
		return failedErrorf("%w", err)
	}
	if o.printer != nil {
		if err := o.printer.PrintObj(newResult(GuardStatusKind, res), o.Out); err != nil {
			return err
		}
	} else {
		writeGuardStatus(o.Out, res)
	}
	switch {
	case !res.Installed:
		return silent(ExitFailed)
	case res.Proof.State == guard.NotActing:
		return silent(ExitFailed)
	case res.Proof.State == guard.Unproven && o.printer != nil:
		fmt.Fprintf(o.ErrOut, "warning: whether the guard acts is unproven: %s\n", res.Proof.Reason)
	}
	return nil
}

func writeGuardStatus(w io.Writer, r *guard.StatusResult) {
	fmt.Fprintf(w, "guard:     %s\n", r.Describe())
	if !r.Installed {
		if r.ServedVersion != "" && r.Policy != guard.ObjectForeign && r.Binding != guard.ObjectForeign {
			fmt.Fprintln(w, "fix:       kubectl bound-token guard install")
		} else {
			fmt.Fprintln(w, "fix:       kubectl bound-token guard watch (runs beside the cluster)")
		}
	} else {
		if !r.Current {
			fmt.Fprintln(w, "update:    kubectl bound-token guard install")
		}
		switch p := r.Proof; p.State {
		case guard.Acting:
			fmt.Fprintf(w, "acting:    yes, proved: %s\n", proofText(p))
		case guard.NotActing:
			fmt.Fprintf(w, "acting:    NO: %s\n", p.Reason)
		default:
			fmt.Fprintf(w, "acting:    unproven: %s\n", p.Reason)
		}
	}
	if r.Counts == nil {
		fmt.Fprintf(w, "guarded:   unknown: %s\n", text.OneLine(r.CountError, 300))
		return
	}
	fmt.Fprintf(w, "guarded:   %d legacy token Secret%s invalid with a guard day\n", r.Counts.Guarded, text.Plural(r.Counts.Guarded))
	fmt.Fprintf(w, "restored:  %d", r.Counts.Restored)
	if len(r.Counts.RestoredBy) > 0 {
		var by []string
		for _, k := range []string{"admission-policy", "guard-watch"} {
			if n := r.Counts.RestoredBy[k]; n > 0 {
				by = append(by, fmt.Sprintf("%d by %s", n, k))
			}
		}
		if len(by) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
		}
	}
	fmt.Fprintln(w)
}
