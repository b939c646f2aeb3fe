package fleetapply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// DefaultGrowth is the default growth of the waves: 1, 2, 4, 8 clusters.
const DefaultGrowth = 2

// Sizes are the sizes of the waves over n clusters: one cluster first,
// then each wave growth times the one before (growth 1: one at a time),
// the last one holding what is left.
func Sizes(n, growth int) ([]int, error) {
	if growth < 1 {
		return nil, fmt.Errorf("wave growth %d: use at least 1", growth)
	}
	var out []int
	for size, left := 1, n; left > 0; size *= growth {
		if size > left {
			size = left
		}
		out = append(out, size)
		left -= size
	}
	return out, nil
}

// What became of a cluster in its wave (Outcome.State).
const (
	// Done: changed (or nothing to change) and its watch was quiet.
	Done = "done"
	// Failed: a change failed or a Secret changed since its backup.
	Failed = "failed"
	// ClientSeen: the watch saw a client present a token of the run
	// (a guard restored it, or it was refused and recorded).
	ClientSeen = "client-seen"
	// Unreachable: the cluster could not be reached or read.
	Unreachable = "unreachable"
	// Skipped: done by an earlier run into the same folder.
	Skipped = "skipped-done"
	// NotRun: a wave before it stopped the run.
	NotRun = "not-run"
)

// Target is one cluster of the run.
type Target struct {
	Context string
	Server  string
	// UID is kube-system's uid; "" when it could not be read.
	UID string
	// Unreachable, when set, says why the cluster could not be planned:
	// its wave fails it without calling Change.
	Unreachable string
}

// Outcome is what a wave did to one cluster.
type Outcome struct {
	Context string `json:"context"`
	UID     string `json:"uid,omitempty"`
	Wave    int    `json:"wave,omitempty"`
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
	// Counts are the cluster's Secrets by outcome.
	Counts map[string]int `json:"counts,omitempty"`
	// Result is the change's own report (Secrets, watch).
	Result any `json:"result,omitempty"`
}

// OK says the cluster is no reason to stop.
func (o Outcome) OK() bool { return o.State == Done || o.State == Skipped }

// Options tune Run.
type Options struct {
	// Growth is the waves' growth (Sizes).
	Growth int
	// Change changes one cluster and watches it; it is called for
	// every cluster of a wave at once. Its Outcome's State says what
	// happened (Done, Failed, ClientSeen, Unreachable).
	Change func(ctx context.Context, t Target) Outcome
	// Index and Dir: the fleet index, saved into Dir as each cluster
	// starts and ends. A cluster the index says is done is skipped.
	Index *Index
	Dir   string
	// OnWave is called when a wave starts (start) and when it ends.
	OnWave func(wave int, targets []Target, start bool)
}

// Result is a run.
type Result struct {
	Waves    [][]string `json:"waves"`
	Clusters []Outcome  `json:"clusters"`
	// Stopped says why the run stopped before its last wave; empty when
	// every wave ended well.
	Stopped string `json:"stopped,omitempty"`
}

// Failed says some cluster is not done.
func (r *Result) Failed() bool {
	for _, c := range r.Clusters {
		if !c.OK() {
			return true
		}
	}
	return false
}

// StopReason is why the run must stop after a wave whose outcomes these
// are: any cluster failed, saw a client, or could not be reached. "" goes
// on.
func StopReason(wave int, outcomes []Outcome) string {
	var why []string
	for _, o := range outcomes {
		if !o.OK() {
			why = append(why, fmt.Sprintf("%s %s", o.Context, o.State))
		}
	}
	if len(why) == 0 {
		return ""
	}
	return fmt.Sprintf("cluster wave %d: %s; the later waves were not started", wave, strings.Join(why, ", "))
}

// Run changes the targets in waves, in order: a wave's clusters at once,
// then the next wave only if every cluster of this one is done. Clusters
// the index says are done are skipped and take no place in a wave. The
// error is the index's (it could not be saved) or ctx's.
func Run(ctx context.Context, targets []Target, o Options) (*Result, error) {
	if o.Change == nil || o.Index == nil {
		return nil, errors.New("fleet waves need a change and an index")
	}
	res := &Result{}
	var todo []Target
	for _, t := range targets {
		if e := o.Index.Entry(t.UID); t.UID != "" && e != nil && e.State == StateDone {
			res.Clusters = append(res.Clusters, Outcome{Context: t.Context, UID: t.UID, State: Skipped, Message: "done by an earlier run into this folder"})
			continue
		}
		todo = append(todo, t)
	}
	sizes, err := Sizes(len(todo), o.Growth)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex // the index, between a wave's clusters
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		return o.Index.Save(o.Dir)
	}
	next := 0
	for w, size := range sizes {
		wave := todo[next : next+size]
		next += size
		names := make([]string, len(wave))
		for i, t := range wave {
			names[i] = t.Context
		}
		res.Waves = append(res.Waves, names)
		if o.OnWave != nil {
			o.OnWave(w+1, wave, true)
		}
		outcomes := make([]Outcome, len(wave))
		var wg sync.WaitGroup
		var saveErr error
		var errMu sync.Mutex
		for i, t := range wave {
			if t.Unreachable != "" || t.UID == "" {
				msg := t.Unreachable
				if msg == "" {
					msg = "the uid of kube-system cannot be read: no folder can name the cluster"
				}
				outcomes[i] = Outcome{Context: t.Context, State: Unreachable, Message: msg}
				continue
			}
			mu.Lock()
			e, err := o.Index.Add(t.UID, t.Context, t.Server)
			if err == nil {
				e.State, e.Note = StateStarted, ""
			}
			mu.Unlock()
			if err == nil {
				err = save()
			}
			if err != nil {
				return res, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				oc := o.Change(ctx, t)
				oc.Context, oc.UID = t.Context, t.UID
				outcomes[i] = oc
				mu.Lock()
				if e := o.Index.Entry(t.UID); e != nil {
					if oc.State == Done {
						e.State, e.Note = StateDone, ""
					} else {
						e.Note = oc.State + ": " + oc.Message
					}
				}
				mu.Unlock()
				if err := save(); err != nil {
					errMu.Lock()
					saveErr = err
					errMu.Unlock()
				}
			}()
		}
		wg.Wait()
		for i := range outcomes {
			outcomes[i].Wave = w + 1
		}
		res.Clusters = append(res.Clusters, outcomes...)
		if o.OnWave != nil {
			o.OnWave(w+1, wave, false)
		}
		notRun := func(why string) {
			for _, t := range todo[next:] {
				res.Clusters = append(res.Clusters, Outcome{Context: t.Context, UID: t.UID, State: NotRun, Message: why})
			}
		}
		if saveErr != nil {
			notRun("the fleet index could not be saved")
			return res, saveErr
		}
		if err := ctx.Err(); err != nil {
			notRun("the run was interrupted")
			return res, err
		}
		if why := StopReason(w+1, outcomes); why != "" {
			res.Stopped = why
			notRun("a wave before stopped the run")
			return res, nil
		}
	}
	return res, nil
}
