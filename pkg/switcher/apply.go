package switcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// ResultSwitched is recorded by switch once a workload's template is
// rewritten; the record's Template is the sha256 of the template the
// server returned, which restore requires to find unchanged.
const ResultSwitched = "switched"

// Outcome results of switch (backup.OutFailed and backup.OutSkipChanged
// too).
const (
	// OutSwitched: the template is rewritten and, when waited for, rolled
	// out (a CronJob: its next Job uses it).
	OutSwitched = "switched"
	// OutNotRolled: the template is rewritten but the controller does not
	// replace pods (paused Deployment, OnDelete, ReplicaSet, RC): the
	// running pods keep the old token until they are recreated.
	OutNotRolled = "changed-not-rolled"
	// OutTimeout: rewritten, but not rolled out within --timeout.
	OutTimeout = "changed-not-rolled-out"
	OutRefused = "refused"
	OutSkipped = "skipped"
)

// Done reports whether an outcome is the goal reached: exit 0 needs every
// outcome done (in a dry run, every switch would be made).
func Done(o backup.Outcome) bool {
	return o.Result == OutSwitched || o.Result == backup.OutWouldChange
}

// ApplyOptions say how switch applies.
type ApplyOptions struct {
	Options
	// DryRun is cmdutil.DryRunNone, DryRunClient (nothing is sent)
	// or DryRunServer (each patch is sent with dryRun=All: the server
	// admits and validates it and stores nothing). A dry run needs no
	// backup, writes none and follows no rollout.
	DryRun  cmdutil.DryRunStrategy
	Workers int
	// Wait follows each rollout as kubectl rollout status does, up to
	// Timeout.
	Wait    bool
	Timeout time.Duration
	// Poll is the interval between rollout checks (default 1 s).
	Poll time.Duration
	// Clock times the rollout checks and their timeout (default: the
	// real clock).
	Clock clock.Clock
	// Progress, when set, is told what is happening (a terminal line).
	Progress func(string)
}

type applier struct {
	client workload.Clients
	backup *backup.Folder
	opts   ApplyOptions
}

// pending is a workload rewritten by this run (or by the interrupted run
// this one finishes) whose rollout is to be followed.
type pending struct {
	w   *Workload
	msg string
}

// Apply switches every switchable plan: first it finishes what an
// interrupted run recorded in backup, then it backs each workload up (file
// written, synced, read back, sha256 in the index) and only then rewrites
// its template with the backed-up resourceVersion as a precondition, and
// records the template it wrote. Refused and skipped plans become outcomes
// with their reasons. With opts.Wait it follows the rollouts.
func Apply(ctx context.Context, client workload.Clients, folder *backup.Folder, plans []*Plan, opts ApplyOptions) ([]backup.Outcome, error) {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.DryRun != cmdutil.DryRunNone {
		return dryRun(ctx, client, plans, opts)
	}
	if folder == nil {
		return nil, errors.New("no backup, no change: applying a switch needs a backup folder")
	}
	// The token settings are recorded before any change, and a rerun
	// with other ones changes nothing.
	recorded, err := folder.Settle(opts.settings())
	if err != nil {
		return nil, err
	}
	if err := checkSettings(folder.Dir, recorded, opts.Options); err != nil {
		return nil, err
	}
	a := &applier{client: client, backup: folder, opts: opts}
	var out []backup.Outcome
	var follow []pending
	finished, err := a.resume(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range finished {
		if f.o != nil {
			out = append(out, *f.o)
		} else {
			follow = append(follow, f.p)
		}
	}
	var todo []*Plan
	for _, p := range plans {
		switch p.Verdict {
		case VerdictSwitchable:
			todo = append(todo, p)
		case VerdictRefused:
			out = append(out, p.Workload.outcome(OutRefused, "%s", joinReasons(p.Reasons)))
		default:
			out = append(out, p.Workload.outcome(OutSkipped, "%s", joinReasons(p.Reasons)))
		}
	}
	const batch = 64
	for start := 0; start < len(todo) && ctx.Err() == nil; start += batch {
		done, rewritten := a.switchBatch(ctx, todo[start:min(len(todo), start+batch)])
		out, follow = append(out, done...), append(follow, rewritten...)
	}
	if err := folder.Sync(); err != nil {
		return out, err
	}
	out = append(out, a.follow(ctx, follow)...)
	backup.SortOutcomes(out)
	return out, ctx.Err()
}

// switchBatch backs a batch of workloads up (one group commit), then
// patches those whose backup holds, at once. It returns the outcomes of
// the workloads not rewritten and the rewritten ones, to follow.
func (a *applier) switchBatch(ctx context.Context, chunk []*Plan) ([]backup.Outcome, []pending) {
	// A workload an interrupted run already backed up at this
	// resourceVersion keeps that backup (checked again here): no second
	// record of the same object.
	errs := make([]error, len(chunk))
	var objs []runtime.Object
	var idx []int
	for i, p := range chunk {
		o := p.Workload.Object
		if e := a.backup.Entry(p.Workload.key(), p.Namespace, p.Name); e != nil && e.Backup != nil &&
			e.Backup.ResourceVersion == o.GetResourceVersion() && e.Backup.UID == string(o.GetUID()) {
			if _, err := a.backup.Read(e.Backup); err == nil {
				continue
			}
		}
		objs = append(objs, o)
		idx = append(idx, i)
	}
	if len(objs) > 0 {
		_, saveErrs := a.backup.SaveBatch(objs)
		for j, i := range idx {
			errs[i] = saveErrs[j]
		}
	}
	results := make([]backup.Outcome, len(chunk))
	ok := make([]bool, len(chunk))
	kubeapi.Parallel(len(chunk), a.opts.Workers, func(i int) {
		if errs[i] != nil {
			results[i] = chunk[i].Workload.outcome(backup.OutFailed, "not changed: %v", errs[i])
			return
		}
		results[i], ok[i] = a.patch(ctx, chunk[i])
	})
	var out []backup.Outcome
	var follow []pending
	for i := range chunk {
		if ok[i] {
			follow = append(follow, pending{w: chunk[i].Workload})
		} else {
			out = append(out, results[i])
		}
	}
	return out, follow
}

func joinReasons(r []string) string { return strings.Join(r, "; ") }

// volumesPatch is a JSON merge patch (RFC 7386: a list is replaced whole)
// that sets the template's volumes, guarded by resourceVersion.
func volumesPatch(w *Workload, rv string, volumes []corev1.Volume) []byte {
	var inner any = map[string]any{"spec": map[string]any{"volumes": volumes}}
	path := w.Type.TemplatePath
	for i := len(path) - 1; i >= 0; i-- {
		inner = map[string]any{path[i]: inner}
	}
	m := inner.(map[string]any)
	m["metadata"] = map[string]any{"resourceVersion": rv}
	data, _ := json.Marshal(m)
	return data
}

func (a *applier) patchObject(ctx context.Context, w *Workload, patch []byte) (workload.Object, error) {
	po := metav1.PatchOptions{DryRun: kubeapi.DryRunAll(a.opts.DryRun)}
	return w.Type.Patch(ctx, a.client, w.Object.GetNamespace(), w.Object.GetName(), types.MergePatchType, patch, po)
}

// dryRun reports what Apply would do: with DryRunClient from the plans
// alone, with DryRunServer after the server accepted each patch (sent with
// dryRun=All, k8s.io/apiserver pkg/endpoints/handlers/patch.go: admitted
// and validated, not stored). Nothing is backed up or recorded.
func dryRun(ctx context.Context, client workload.Clients, plans []*Plan, opts ApplyOptions) ([]backup.Outcome, error) {
	a := &applier{client: client, opts: opts}
	out := make([]backup.Outcome, len(plans))
	kubeapi.Parallel(len(plans), opts.Workers, func(i int) {
		p := plans[i]
		switch {
		case p.Verdict == VerdictRefused:
			out[i] = p.Workload.outcome(OutRefused, "%s", joinReasons(p.Reasons))
			return
		case p.Verdict != VerdictSwitchable:
			out[i] = p.Workload.outcome(OutSkipped, "%s", joinReasons(p.Reasons))
			return
		}
		note := ""
		if res, msg := noRollout(p.Workload); res == OutNotRolled {
			note = "; then: " + msg
		}
		if opts.DryRun == cmdutil.DryRunClient {
			out[i] = p.Workload.outcome(backup.OutWouldChange, "would switch (client dry run)%s", note)
			return
		}
		if o, ok := a.patch(ctx, p); !ok {
			out[i] = o
			return
		}
		out[i] = p.Workload.outcome(backup.OutWouldChange, "would switch (server dry run accepted)%s", note)
	})
	backup.SortOutcomes(out)
	return out, ctx.Err()
}

// patch rewrites one backed-up workload. A conflict is looked into: the
// template we wanted (our own retried write), the backed-up template with
// a newer resourceVersion (a status update: patched again), or anything
// else (left alone: it changed after its backup).
func (a *applier) patch(ctx context.Context, p *Plan) (backup.Outcome, bool) {
	w := p.Workload
	want := workload.TemplateSum(p.Template)
	orig := workload.TemplateSum(w.Template())
	rv := w.Object.GetResourceVersion()
	for attempt := 0; attempt < 4; attempt++ {
		var res workload.Object
		tries, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
			var err error
			res, err = a.patchObject(ctx, w, volumesPatch(w, rv, p.Template.Spec.Volumes))
			return err
		})
		if err == nil {
			nw, _ := NewWorkload(res)
			return a.record(w, workload.TemplateSum(nw.Template()))
		}
		if !apierrors.IsConflict(err) && !retry.MayHaveApplied(tries, err) {
			return w.outcome(backup.OutFailed, "not changed: %v", kubeapi.DescribeAPIError(err, "patch", w.Type.ResourceGroup(), w.Object.GetNamespace())), false
		}
		cur, gerr := GetWorkload(ctx, a.client, w.Type, w.Object.GetNamespace(), w.Object.GetName())
		if gerr != nil {
			return w.outcome(backup.OutFailed, "patch: %v; then reading it back: %v", err, gerr), false
		}
		switch workload.TemplateSum(cur.Template()) {
		case want:
			return a.record(w, want)
		case orig:
			rv = cur.Object.GetResourceVersion()
			continue
		}
		return w.outcome(backup.OutSkipChanged, "its template changed after the backup: left alone; run again to judge it anew"), false
	}
	return w.outcome(backup.OutFailed, "not changed: its resourceVersion kept changing"), false
}

func (a *applier) record(w *Workload, sum string) (backup.Outcome, bool) {
	if a.opts.DryRun != cmdutil.DryRunNone {
		return backup.Outcome{}, true
	}
	err := a.backup.Note(backup.Record{Op: backup.OpDone, Kind: w.Kind, Group: backup.RecordGroup(w.Type.Group), Namespace: w.Object.GetNamespace(), Name: w.Object.GetName(), Result: ResultSwitched, Template: sum})
	if err != nil {
		return w.outcome(backup.OutFailed, "changed, but not recorded in the backup: %v", err), false
	}
	return backup.Outcome{}, true
}

// backedUp returns the kind of a backup record when switch backs up
// objects of that kind (the kinds of the workload table whose template
// can change), or nil.
func backedUp(r *backup.Record) *workload.Kind {
	k := workload.Lookup(r.Group, r.Kind)
	if k == nil || k.Immutable || k.TemplatePath == nil {
		return nil
	}
	return k
}

type finished struct {
	o *backup.Outcome
	p pending
}

// resume finishes what an interrupted run left: a workload backed up but
// with no switch record. If its template is what the switch of its backup
// gives, the interrupted run rewrote it: recorded now, and followed. If it
// is still the backed-up one, this run's plan switches it. Anything else
// changed since: reported, left alone.
func (a *applier) resume(ctx context.Context) ([]finished, error) {
	ix := a.backup.Index
	var recs []backup.Record
	for _, k := range ix.Order {
		e := ix.Entries[k]
		if e.Backup == nil || backedUp(e.Backup) == nil || e.Results.Has(ResultSwitched) {
			continue
		}
		recs = append(recs, *e.Backup)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	tokens := map[string]map[string]*corev1.Secret{}
	var out []finished
	for _, r := range recs {
		data, err := a.backup.Read(&r)
		if err != nil {
			return nil, fmt.Errorf("cannot resume from %s: %v", a.backup.Dir, err)
		}
		bw, err := DecodeWorkload(&r, data)
		if err != nil {
			return nil, fmt.Errorf("cannot resume from %s: %s: %v", a.backup.Dir, r.File, err)
		}
		cur, err := GetWorkload(ctx, a.client, bw.Type, r.Namespace, r.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, kubeapi.DescribeAPIError(err, "get", bw.Type.ResourceGroup(), r.Namespace)
		}
		got := workload.TemplateSum(cur.Template())
		if got == workload.TemplateSum(bw.Template()) {
			continue
		}
		if tokens[r.Namespace] == nil {
			t, err := Tokens(ctx, a.client.Kube, r.Namespace)
			if err != nil {
				return nil, err
			}
			tokens[r.Namespace] = t[r.Namespace]
		}
		p := MakePlan(bw, tokens[r.Namespace], a.opts.Options)
		if p.Template != nil && workload.TemplateSum(p.Template) == got {
			if o, ok := a.record(cur, got); !ok {
				out = append(out, finished{o: &o})
				continue
			}
			out = append(out, finished{p: pending{w: cur, msg: "(rewritten by the interrupted run) "}})
			continue
		}
		o := cur.outcome(backup.OutSkipChanged, "backed up by the interrupted run, but its template is neither the backed-up one nor its switch now: left alone")
		out = append(out, finished{o: &o})
	}
	return out, nil
}

// DecodeWorkload reads the backed-up manifest of a record.
func DecodeWorkload(r *backup.Record, data []byte) (*Workload, error) {
	k := backedUp(r)
	if k == nil {
		return nil, fmt.Errorf("a backup holds no %s", r.Type())
	}
	obj := k.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("not a %s manifest: %v", r.Type(), err)
	}
	return NewWorkload(obj)
}
