package switcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// noRollout says why a rewritten workload's pods will not be replaced, or
// "" when a rollout follows (workload.RolloutOf).
func noRollout(w *Workload) (result, msg string) {
	r := workload.RolloutOf(w.Object)
	switch {
	case r.Next != "":
		return OutSwitched, "the next " + r.Next + " uses the projected token"
	case r.Held != "":
		msg := "changed, but " + r.Held + ": pods keep the old token until recreated"
		if r.Hint != "" {
			msg += " (" + r.Hint + ")"
		}
		return OutNotRolled, msg
	}
	return "", ""
}

// follow waits for the rollouts of the rewritten workloads.
func (a *applier) follow(ctx context.Context, ps []pending) []backup.Outcome {
	var out []backup.Outcome
	var wait []pending
	for _, p := range ps {
		// Whether pods will be replaced at all does not depend on
		// waiting: a workload that does not roll is reported so with
		// --wait=false too.
		if res, msg := noRollout(p.w); res != "" {
			out = append(out, p.w.outcome(res, "%s%s", p.msg, msg))
			continue
		}
		if !a.opts.Wait {
			out = append(out, p.w.outcome(OutSwitched, "%stemplate rewritten; rollout not waited for", p.msg))
			continue
		}
		wait = append(wait, p)
	}
	if len(wait) == 0 {
		return out
	}
	done, last := a.pollRollouts(ctx, wait)
	for i, d := range done {
		if d != nil {
			out = append(out, *d)
			continue
		}
		why := "not rolled out within the timeout"
		if ctx.Err() != nil {
			why = "interrupted while waiting for the rollout"
		}
		out = append(out, wait[i].w.outcome(OutTimeout, "%stemplate rewritten; %s: %s", wait[i].msg, why, last[i]))
	}
	return out
}

// pollRollouts asks every Poll (by the run's clock) how each rollout is
// going, as kubectl rollout status does, until all are done, the Timeout
// passed or ctx ended. done[i] is the outcome of a finished one; last[i]
// what the status said last of one still going.
func (a *applier) pollRollouts(ctx context.Context, wait []pending) (done []*backup.Outcome, last []string) {
	poll := a.opts.Poll
	if poll <= 0 {
		poll = time.Second
	}
	timeout := a.opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	clk := a.opts.Clock
	deadline := clk.Now().Add(timeout)
	last = make([]string, len(wait))
	done = make([]*backup.Outcome, len(wait))
	for {
		var mu sync.Mutex
		left := 0
		kubeapi.Parallel(len(wait), a.opts.Workers, func(i int) {
			if done[i] != nil {
				return
			}
			o, msg := a.rolloutOf(ctx, wait[i])
			mu.Lock()
			defer mu.Unlock()
			if o != nil {
				done[i] = o
				return
			}
			last[i] = msg
			left++
		})
		if a.opts.Progress != nil {
			a.opts.Progress(fmt.Sprintf("rollouts: %d of %d done", len(wait)-left, len(wait)))
		}
		if left == 0 || ctx.Err() != nil || clk.Now().After(deadline) {
			return done, last
		}
		select {
		case <-ctx.Done():
		case <-clk.After(poll):
		}
	}
}

// rolloutOf reads a workload again and judges its rollout: an outcome
// when it is over (rolled out, or failed), else what the status says.
func (a *applier) rolloutOf(ctx context.Context, p pending) (*backup.Outcome, string) {
	cur, err := GetWorkload(ctx, a.client, p.w.Type, p.w.Object.GetNamespace(), p.w.Object.GetName())
	if err != nil {
		return nil, err.Error()
	}
	msg, ok, err := workload.RolloutStatus(cur.Object)
	switch {
	case err != nil:
		o := p.w.outcome(OutTimeout, "%stemplate rewritten; rollout failed: %v", p.msg, err)
		return &o, ""
	case ok:
		o := p.w.outcome(OutSwitched, "%srolled out", p.msg)
		return &o, ""
	}
	return nil, strings.TrimSpace(msg)
}
