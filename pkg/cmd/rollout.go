package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
)

// rolloutReporter prints an OpenShift kube-apiserver rollout as wait and
// rotate issuer follow it: each summary on a terminal only (logs stay
// clean), each failure once, always.
type rolloutReporter struct {
	errOut   io.Writer
	terminal bool
	reported map[string]bool
}

func newRolloutReporter(errOut io.Writer) *rolloutReporter {
	return &rolloutReporter{errOut: errOut, terminal: isTerminal(errOut), reported: map[string]bool{}}
}

func (r *rolloutReporter) progress(p openshift.Progress) {
	if r.terminal {
		fmt.Fprintln(r.errOut, p.Summary())
	}
	for _, f := range p.Failures {
		if !r.reported[f] {
			r.reported[f] = true
			fmt.Fprintf(r.errOut, "warning: %s\n", f)
		}
	}
}

func (r *rolloutReporter) reconnect(reason string) {
	if r.terminal {
		fmt.Fprintln(r.errOut, reason)
	}
}

// rolloutError maps openshift.Waiter's outcome to exit codes: a failed
// install is 1, a timeout or a cluster that cannot be followed is 2.
func rolloutError(err error, p openshift.Progress, timeout time.Duration) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, openshift.ErrFailed):
		return failedErrorf("kube-apiserver rollout to revision %d failed; see the warnings above and `oc get kubeapiserver cluster -o yaml`", p.Revision)
	case errors.Is(err, context.DeadlineExceeded):
		return usageErrorf("timed out after %s: %s", timeout, p.Summary())
	}
	return usageErrorf("%w", err)
}
