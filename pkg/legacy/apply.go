package legacy

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Results of apply, besides the shared ones (backup.Out*).
const (
	OutInvalidated    = "invalidated"
	OutDeleted        = "deleted"
	OutAlreadyInvalid = "already-invalid"
	OutAlreadyDone    = "already-done" // by an earlier run into the same backup
	// OutNextWave: eligible, but beyond ApplyOptions.Limit: left for the
	// next wave (the next run into the same backup takes it).
	OutNextWave = "next-wave"
	// OutRefRemoved: an earlier run into the same backup deleted the Secret
	// (and said so); this run only removed it from its service account.
	OutRefRemoved = "reference-removed"
	// OutNotConfirmed: eligible now, but not among the Secrets
	// ApplyOptions.Allow admits (the ones a question counted): left alone.
	OutNotConfirmed = "skipped-not-confirmed"
)

// Results recorded by backup.OpDone.
const (
	ResultInvalidated = "invalidated"
	ResultDeleted     = "deleted"     // the Secret is gone; the SA reference may remain
	ResultRefRemoved  = "ref-removed" // the SA no longer lists the Secret
)

// Kinds of the objects migrate backs up.
const (
	KindSecret         = "Secret"
	KindServiceAccount = "ServiceAccount"
)

// ApplyOptions say what apply does.
type ApplyOptions struct {
	Mode string
	// Date is the invalidation day, YYYY-MM-DD: the invalid-since value
	// and AnnotationInvalidatedOn. It should be the apiserver's UTC day
	// (ServerClock), since kube-apiserver decides by its own clock
	// whether a rejected use writes the last-used label.
	Date string
	// Revoke invalidates for revocation (a leaked token): no guard day,
	// and a Secret already invalidated for clean-up loses its guard.
	Revoke bool
	// GuardDays is how many days after Date a guard may restore a Secret
	// invalidated for clean-up (LabelGuardUntil); 0 means
	// DefaultGuardDays.
	GuardDays int
	DryRun    cmdutil.DryRunStrategy
	// Include names verdicts besides the mode's own that may be changed.
	Include Include
	Workers int
	// Limit, when above 0, is how many Secrets this run may change (a
	// wave): the first Limit that reach the change, in the scan's order,
	// are changed; the others that would have been are OutNextWave. Those
	// an earlier run into the same backup changed are OutAlreadyDone and
	// do not count, so the next run takes the next ones.
	Limit int
	// Allow, when set, admits the Secrets this run may change (NAMESPACE,
	// NAME): one that would be changed but is not admitted is
	// OutNotConfirmed. A run that asked first passes the Secrets it
	// counted, so that it never changes more than was confirmed.
	Allow func(namespace, name string) bool
	// AfterBackup runs between a Secret's backup and its change; tests use
	// it to change the Secret in that window.
	AfterBackup func(ns, name string)
	// Done is called after each Secret, from one goroutine at a time.
	Done func(backup.Outcome)
	// Stream, when set, is handed each outcome in the order the scan
	// found the Secrets (an interrupted run's finishes first), from one
	// goroutine at a time, and ApplyResult.Outcomes stays empty: memory
	// holds the Secrets in flight, not the run. An error from Stream (the
	// output is gone) stops the scan; changes under way finish.
	Stream func(backup.Outcome) error
}

// ApplyResult lists every outcome, sorted by namespace and name (none
// with ApplyOptions.Stream), and counts them by result.
type ApplyResult struct {
	Outcomes []backup.Outcome
	Counts   map[string]int
	// Info is what the verdicts rested on; nil when the scan did not start.
	Info *ScanInfo
}

type applier struct {
	client kubernetes.Interface
	backup *backup.Folder
	opts   ApplyOptions

	saMu   sync.Mutex
	saOnce map[string]*saBackup
}

type saBackup struct {
	once sync.Once
	err  error
}

// Apply invalidates or deletes the Secrets Scan selects whose verdict is
// the mode's own (invalidate, delete), or one opts.Include names; every
// other Secret is reported as skipped with its reason. Each Secret (and
// each ServiceAccount whose list changes) is saved to backup, read back and
// checked before it is touched; with backup nil only a dry run is allowed.
// A backup that holds an earlier, interrupted run is finished first.
func Apply(ctx context.Context, client kubernetes.Interface, folder *backup.Folder, scan ScanOptions, opts ApplyOptions) (*ApplyResult, error) {
	if err := opts.complete(folder); err != nil {
		return nil, err
	}
	a := &applier{client: client, backup: folder, opts: opts, saOnce: map[string]*saBackup{}}
	if folder != nil {
		// No step reads a Secret's backup after its done record (a
		// later wave sees its result), so 100,000 Secrets do not keep
		// 100,000 records in memory.
		folder.Lean()
	}
	res := &ApplyResult{Counts: map[string]int{}}
	// Outcomes are kept for the sorted report at the end: their
	// namespaces and messages ("guarded until DAY", the same for a whole
	// run) are shared, not one copy per Secret.
	out := &outcomes{res: res, opts: &opts, shared: map[string]string{}, pending: map[int]backup.Outcome{}}
	record := out.record
	// Pending finishes come first and are never held back: they are an
	// interrupted run's, not a new change.
	if folder != nil {
		for _, r := range folder.Unfinished(KindSecret, ResultInvalidated, ResultRefRemoved) {
			if o, ok := a.finishGone(ctx, r); ok {
				record(nil, o)
			}
		}
	}

	// Found Secrets are backed up in batches by one goroutine (a few disk
	// flushes per batch), then changed by the workers.
	found := make(chan *Finding, 4*batchSize)
	// Buffered so that the next batch is backed up while this one changes.
	ready := make(chan *Finding, 2*batchSize)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range ready {
				record(f, a.change(ctx, f))
			}
		}()
	}
	backed := make(chan struct{})
	go func() {
		defer close(backed)
		defer close(ready)
		a.backUp(ctx, found, ready, record)
	}()
	seq := 0
	info, err := Scan(ctx, client, scan, func(f *Finding) error {
		if err := out.failed(); err != nil {
			return err
		}
		f.seq, seq = seq, seq+1
		select {
		case found <- f:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(found)
	<-backed
	wg.Wait()
	out.flush()
	backup.SortOutcomes(res.Outcomes)
	res.Info = info
	if err == nil {
		err = out.failed()
	}
	return res, err
}

// outcomes collects an apply's outcomes: counted, and kept for the report
// or handed to ApplyOptions.Stream in the scan's order, which is the
// LIST's: by storage key, NAMESPACE/NAME (k8s.io/apiserver
// pkg/storage/etcd3/store.go GetList ranges over the key prefix; the
// watch cache's pkg/storage/cacher/store/store_btree.go OrderedListPrefix
// walks its btree in key order) (a Secret's
// outcome waits in pending until those found before it have theirs).
type outcomes struct {
	res    *ApplyResult
	opts   *ApplyOptions
	shared map[string]string

	mu        sync.Mutex
	next      int // the scan order of the next outcome to stream
	pending   map[int]backup.Outcome
	streamErr error
}

// record takes the outcome of f (nil: an interrupted run's Secret, found
// before the scan).
func (c *outcomes) record(f *Finding, o backup.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o.Namespace, o.Message = share(c.shared, o.Namespace), share(c.shared, o.Message)
	c.res.Counts[o.Result]++
	if c.opts.Done != nil {
		c.opts.Done(o)
	}
	switch {
	case c.opts.Stream == nil:
		c.res.Outcomes = append(c.res.Outcomes, o)
	case f == nil:
		c.emit(o)
	default:
		c.pending[f.seq] = o
		for p, ok := c.pending[c.next]; ok; p, ok = c.pending[c.next] {
			delete(c.pending, c.next)
			c.next++
			c.emit(p)
		}
	}
}

// flush streams what is left, in order: every Secret handed on gets an
// outcome, so pending is empty unless a step was cut short.
func (c *outcomes) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]int, 0, len(c.pending))
	for k := range c.pending {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		c.emit(c.pending[k])
		delete(c.pending, k)
	}
}

func (c *outcomes) emit(o backup.Outcome) {
	if c.streamErr == nil {
		c.streamErr = c.opts.Stream(o)
	}
}

func (c *outcomes) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streamErr
}

// share returns the copy of s kept in m, adding it while m holds fewer
// than 20,000 strings (a cluster's namespaces and a run's messages fit;
// messages that name each Secret's resourceVersion do not repeat).
func share(m map[string]string, s string) string {
	if v, ok := m[s]; ok {
		return v
	}
	if len(m) < 20000 {
		m[s] = s
	}
	return s
}

// complete sets the defaults and refuses, before anything is read or
// changed, options that cannot run: an unknown mode, a change without a
// backup, an invalidation whose marks or purpose do not hold.
func (o *ApplyOptions) complete(folder *backup.Folder) error {
	if o.Mode != backup.ModeInvalidate && o.Mode != backup.ModeDelete {
		return fmt.Errorf("unknown mode %q: use invalidate or delete", o.Mode)
	}
	if folder == nil && o.DryRun == cmdutil.DryRunNone {
		return fmt.Errorf("no backup, no change: apply needs a backup folder")
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Mode != backup.ModeInvalidate {
		return nil
	}
	if o.GuardDays == 0 && !o.Revoke {
		o.GuardDays = DefaultGuardDays
	}
	if err := o.checkInvalidation(); err != nil {
		return err
	}
	if folder != nil {
		return checkPurpose(folder, *o)
	}
	return nil
}

// backUp takes the scan's findings in order: those that need no change
// are recorded, those beyond ApplyOptions.Limit are left for the next
// wave, and the rest are backed up in batches and handed on, ready to
// change. One goroutine reads found, in the scan's order, so the wave is
// the same Secrets however many workers change them.
func (a *applier) backUp(ctx context.Context, found <-chan *Finding, ready chan<- *Finding, record func(*Finding, backup.Outcome)) {
	var batch []*Finding
	taken := 0 // Secrets sent on to change, against Limit
	flush := func() {
		for _, f := range a.backupBatch(ctx, batch, record) {
			ready <- f
		}
		batch = batch[:0]
	}
	for f := range found {
		if o, done := a.prepare(f); done {
			record(f, o)
			continue
		}
		if a.opts.Allow != nil && !a.opts.Allow(f.Namespace, f.Name) {
			record(f, outcome(f, OutNotConfirmed, "not among the Secrets counted when the run was confirmed: left alone; run again to be asked about it"))
			continue
		}
		if a.opts.Limit > 0 && taken >= a.opts.Limit {
			record(f, outcome(f, OutNextWave, "left for the next wave: run again into the same backup folder"))
			continue
		}
		taken++
		batch = append(batch, f)
		// A batch closes when full or when the scan has nothing more
		// ready, so changes start without waiting for the whole list.
		if len(batch) >= batchSize || len(found) == 0 {
			flush()
		}
	}
	flush()
}

// getSecret reads one Secret, repeated on transient errors.
func getSecret(ctx context.Context, client kubernetes.Interface, ns, name string) (*corev1.Secret, error) {
	return retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.Secret, error) {
		return client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	})
}

func (a *applier) dryRun() []string {
	if a.opts.DryRun == cmdutil.DryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func outcome(f *Finding, result, format string, args ...any) backup.Outcome {
	return backup.Outcome{Namespace: f.Namespace, Name: f.Name, Result: result, Message: fmt.Sprintf(format, args...)}
}

const batchSize = 64

// prepare settles what needs no change and reports done; the rest goes on
// to backup and change.
func (a *applier) prepare(f *Finding) (backup.Outcome, bool) {
	var entry *backup.Entry
	if a.backup != nil {
		entry = a.backup.Entry(KindSecret, f.Namespace, f.Name)
		if entry != nil && (entry.Results.Has(ResultInvalidated) || entry.Results.Has(ResultRefRemoved)) {
			return outcome(f, OutAlreadyDone, "done by an earlier run recorded in this backup"), true
		}
	}
	if a.opts.Mode == backup.ModeInvalidate && f.InvalidSince != "" {
		// A leaked token must not be restored when presented: a
		// revocation takes the guard off one invalidated for clean-up.
		if f.Unguards(a.opts.Mode, a.opts.Revoke) {
			if a.opts.DryRun == cmdutil.DryRunClient {
				return outcome(f, backup.OutWouldChange, "would remove its guard: invalid for revocation (client dry run)"), true
			}
			return backup.Outcome{}, false
		}
		// A run killed after its patch but before its record left exactly
		// this: our marks on an otherwise unchanged Secret.
		if entry != nil && entry.Backup != nil && a.onlyOurLabel(entry.Backup, f.Secret) {
			if err := a.backup.Note(backup.Record{Op: backup.OpDone, Kind: KindSecret, Namespace: f.Namespace, Name: f.Name, Result: ResultInvalidated}); err != nil {
				return outcome(f, backup.OutFailed, "%v", err), true
			}
			return outcome(f, OutInvalidated, "invalidated (finished an interrupted run)"), true
		}
		return outcome(f, OutAlreadyInvalid, "already invalid since %s", f.InvalidSince), true
	}
	// The one judgement: apply changes what the audit's verdict allows.
	if result, why := f.Eligible(a.opts.Mode, a.opts.Include); result != "" {
		return outcome(f, result, "%s", why), true
	}
	if a.opts.DryRun == cmdutil.DryRunClient {
		return outcome(f, backup.OutWouldChange, "would %s (client dry run)", a.opts.Mode), true
	}
	return backup.Outcome{}, false
}

// backupBatch backs up every Secret of the batch (and, for delete, the
// ServiceAccounts whose lists change) and returns those that may change;
// the others are recorded as failed and left alone.
func (a *applier) backupBatch(ctx context.Context, batch []*Finding, record func(*Finding, backup.Outcome)) []*Finding {
	if a.backup == nil || len(batch) == 0 {
		return append([]*Finding(nil), batch...)
	}
	var ok, save []*Finding
	for _, f := range batch {
		sec := f.Secret
		e := a.backup.Entry(KindSecret, f.Namespace, f.Name)
		if e != nil && e.Backup != nil && e.Backup.UID == string(sec.UID) && e.Backup.ResourceVersion == sec.ResourceVersion {
			// Backed up by an interrupted run and unchanged since.
			if err := a.backup.Verify(e.Backup); err != nil {
				record(f, outcome(f, backup.OutFailed, "earlier backup of it fails its check, left alone: %v", err))
				continue
			}
			ok = append(ok, f)
			continue
		}
		save = append(save, f)
	}
	objs := make([]runtime.Object, len(save))
	for i, f := range save {
		objs[i] = f.Secret
	}
	_, errs := a.backup.SaveBatch(objs)
	for i, f := range save {
		if errs[i] != nil {
			record(f, outcome(f, backup.OutFailed, "%v; left alone", errs[i]))
			continue
		}
		ok = append(ok, f)
	}
	if a.opts.Mode != backup.ModeDelete {
		return ok
	}
	kept := ok[:0]
	for _, f := range ok {
		if f.AutoGenerated {
			if err := a.saveServiceAccount(ctx, f.Namespace, f.ServiceAccount); err != nil {
				record(f, outcome(f, backup.OutFailed, "%v; left alone", err))
				continue
			}
		}
		kept = append(kept, f)
	}
	return kept
}

// change invalidates or deletes one backed-up Secret, with the backed-up
// uid and resourceVersion as preconditions.
func (a *applier) change(ctx context.Context, f *Finding) backup.Outcome {
	rv, uid := f.Secret.ResourceVersion, f.Secret.UID
	if a.opts.AfterBackup != nil {
		a.opts.AfterBackup(f.Namespace, f.Name)
	}
	var err error
	var tries int
	switch a.opts.Mode {
	case backup.ModeInvalidate:
		patch := a.opts.invalidation(f.Secret)
		if f.InvalidSince != "" {
			patch = revocation(f.Secret)
		}
		tries, err = callRetried(ctx, func(ctx context.Context) error {
			_, err := a.client.CoreV1().Secrets(f.Namespace).Patch(ctx, f.Name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: a.dryRun()})
			return err
		})
	case backup.ModeDelete:
		tries, err = callRetried(ctx, func(ctx context.Context) error {
			return a.client.CoreV1().Secrets(f.Namespace).Delete(ctx, f.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
				DryRun:        a.dryRun(),
			})
		})
	}
	var lookErr error
	switch {
	case err == nil:
	case apierrors.IsConflict(err):
		if o, ours := a.changed(ctx, f, rv, tries > 1); !ours {
			return o
		}
		// An earlier attempt went through; its answer was lost.
	case apierrors.IsNotFound(err) && a.opts.Mode == backup.ModeDelete && a.opts.DryRun == cmdutil.DryRunNone:
		// Gone, as intended, and backed up: by a retried attempt of ours
		// or by someone else, the end state is the same.
	case apierrors.IsNotFound(err):
		return outcome(f, backup.OutSkipGone, "deleted by someone else after it was listed")
	case retry.MayHaveApplied(tries, err) && a.opts.DryRun == cmdutil.DryRunNone:
		var cur *corev1.Secret
		if cur, lookErr = getSecret(ctx, a.client, f.Namespace, f.Name); a.ours(f, cur, lookErr) {
			break // an earlier try went through; its answer was lost
		}
		fallthrough
	default:
		return outcome(f, backup.OutFailed, "%s: %v%s", a.opts.Mode, kubeapi.DescribeAPIError(err, verbOf(a.opts.Mode), "secrets", f.Namespace), unsure(lookErr))
	}
	if a.opts.DryRun == cmdutil.DryRunServer {
		return outcome(f, backup.OutWouldChange, "would %s (server dry run accepted)", a.opts.Mode)
	}
	if a.opts.Mode == backup.ModeInvalidate {
		if err := a.backup.Note(backup.Record{Op: backup.OpDone, Kind: KindSecret, Namespace: f.Namespace, Name: f.Name, Result: ResultInvalidated}); err != nil {
			return outcome(f, backup.OutFailed, "invalidated, but %v", err)
		}
		return outcome(f, OutInvalidated, "%s", a.invalidatedMessage(f))
	}
	if err := a.backup.Note(backup.Record{Op: backup.OpDone, Kind: KindSecret, Namespace: f.Namespace, Name: f.Name, Result: ResultDeleted}); err != nil {
		return outcome(f, backup.OutFailed, "deleted, but %v", err)
	}
	return a.dropRef(ctx, f.Namespace, f.Name, f.ServiceAccount, f.AutoGenerated)
}

func verbOf(mode string) string {
	if mode == backup.ModeDelete {
		return "delete"
	}
	return "patch"
}

// changed explains a precondition failure: the Secret is no longer the one
// that was backed up, so it is left alone. After a retry the failure may be
// the trace of our own write; ours reports that case.
func (a *applier) changed(ctx context.Context, f *Finding, rv string, retried bool) (o backup.Outcome, ours bool) {
	cur, err := getSecret(ctx, a.client, f.Namespace, f.Name)
	if retried && a.ours(f, cur, err) {
		return backup.Outcome{}, true
	}
	switch {
	case apierrors.IsNotFound(err):
		return outcome(f, backup.OutSkipGone, "deleted by someone else after its backup"), false
	case err != nil:
		return outcome(f, backup.OutSkipChanged, "changed after its backup (resourceVersion %s); left alone", rv), false
	case string(cur.UID) != f.UID:
		return outcome(f, backup.OutSkipChanged, "replaced by another Secret of that name after its backup; left alone"), false
	}
	return outcome(f, backup.OutSkipChanged, "changed after its backup (resourceVersion %s, now %s); left alone, run again to back it up anew", rv, cur.ResourceVersion), false
}

// ours judges a read of the Secret (cur, err) made after a retried write
// failed: whether one of the tries went through and its answer was lost.
func (a *applier) ours(f *Finding, cur *corev1.Secret, err error) bool {
	switch {
	case apierrors.IsNotFound(err):
		// Gone, as intended, and backed up.
		return a.opts.Mode == backup.ModeDelete
	case err != nil || string(cur.UID) != f.UID:
		return false
	case a.opts.Mode == backup.ModeInvalidate && f.InvalidSince != "":
		// A revocation of a guarded Secret: its guard is gone.
		return !guarded(cur) && cur.Annotations[AnnotationInvalidatedFor] == InvalidatedForRevocation
	case a.opts.Mode == backup.ModeInvalidate && a.backup != nil:
		e := a.backup.Entry(KindSecret, f.Namespace, f.Name)
		return e != nil && e.Backup != nil && a.onlyOurLabel(e.Backup, cur)
	}
	return false
}

// invalidatedMessage says what an invalidation wrote besides the label.
func (a *applier) invalidatedMessage(f *Finding) string {
	if f.InvalidSince != "" {
		return "already invalid since " + f.InvalidSince + "; its guard removed: invalid for revocation"
	}
	msg := "guarded until " + a.opts.guardDay()
	if a.opts.Revoke {
		msg = "for revocation: never guarded"
	}
	if v := f.Secret.Labels[LabelLastUsed]; silentLastUsed(v, a.opts.Date) {
		msg += "; last-used label (" + v + ") cleared, so that kube-apiserver records the next use"
	}
	return msg
}

// unsure ends the message of a failed write when the look after it failed
// too (a missing object is an answer), so a try may have gone through.
func unsure(lookErr error) string {
	if lookErr == nil || apierrors.IsNotFound(lookErr) {
		return ""
	}
	return "; " + retry.RunAgain
}

// onlyOurLabel reports whether cur is the backed-up Secret plus what our
// invalidation writes: the trace of a patch whose record was lost.
func (a *applier) onlyOurLabel(r *backup.Record, cur *corev1.Secret) bool {
	data, err := a.backup.Read(r)
	if err != nil {
		return false
	}
	want, err := decodeSecret(data)
	if err != nil {
		return false
	}
	return invalidatedFrom(want, r.UID, cur, a.backup.Index.Date)
}

// saveServiceAccount backs the SA up once, before the first change to its
// list; a backup from an earlier run is kept, as it holds the original.
func (a *applier) saveServiceAccount(ctx context.Context, ns, name string) error {
	if e := a.backup.Entry(KindServiceAccount, ns, name); e != nil && e.Backup != nil {
		return nil
	}
	key := ns + "/" + name
	a.saMu.Lock()
	s := a.saOnce[key]
	if s == nil {
		s = &saBackup{}
		a.saOnce[key] = s
	}
	a.saMu.Unlock()
	s.once.Do(func() {
		sa, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.ServiceAccount, error) {
			return a.client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		})
		if err != nil {
			s.err = kubeapi.DescribeAPIError(err, "get", "serviceaccounts", ns)
			return
		}
		_, s.err = a.backup.Save(sa)
	})
	return s.err
}

// dropRef removes the deleted Secret from its SA's list. The strategic
// merge delete directive names the entry, so concurrent removals for one
// SA neither conflict nor clobber each other.
func (a *applier) dropRef(ctx context.Context, ns, secret, sa string, listed bool) backup.Outcome {
	f := &Finding{Namespace: ns, Name: secret}
	if listed && sa != "" {
		patch, _ := json.Marshal(map[string]any{"secrets": []map[string]string{{"$patch": "delete", "name": secret}}})
		err := call(ctx, func(ctx context.Context) error {
			_, err := a.client.CoreV1().ServiceAccounts(ns).Patch(ctx, sa, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return outcome(f, backup.OutDeletedRefLeft, "deleted, but removing it from service account %s failed: %v; run again to finish", sa, kubeapi.DescribeAPIError(err, "patch", "serviceaccounts", ns))
		}
	}
	if err := a.backup.Note(backup.Record{Op: backup.OpDone, Kind: KindSecret, Namespace: ns, Name: secret, Result: ResultRefRemoved}); err != nil {
		return outcome(f, backup.OutFailed, "deleted, but %v", err)
	}
	return outcome(f, OutDeleted, "")
}

// finishGone completes a Secret that an interrupted run backed up and that
// no longer exists. It reports false when the Secret still exists: the scan
// takes care of it.
func (a *applier) finishGone(ctx context.Context, r backup.Record) (backup.Outcome, bool) {
	f := &Finding{Namespace: r.Namespace, Name: r.Name}
	_, err := getSecret(ctx, a.client, r.Namespace, r.Name)
	switch {
	case err == nil:
		return backup.Outcome{}, false
	case !apierrors.IsNotFound(err):
		return outcome(f, backup.OutFailed, "cannot check it: %v", err), true
	case a.opts.Mode == backup.ModeInvalidate:
		return outcome(f, backup.OutSkipGone, "deleted by someone else after its backup; restore can bring it back"), true
	case a.opts.DryRun != cmdutil.DryRunNone:
		return outcome(f, backup.OutWouldChange, "would finish removing it from its service account"), true
	}
	e := a.backup.Entry(KindSecret, r.Namespace, r.Name)
	// An earlier run that recorded the deletion also reported it (as
	// deleted or deleted-reference-left); reporting it deleted again would
	// count one Secret twice.
	deletedBefore := e.Results.Has(ResultDeleted)
	if !deletedBefore {
		if err := a.backup.Note(backup.Record{Op: backup.OpDone, Kind: KindSecret, Namespace: r.Namespace, Name: r.Name, Result: ResultDeleted}); err != nil {
			return outcome(f, backup.OutFailed, "%v", err), true
		}
	}
	data, err := a.backup.Read(&r)
	if err != nil {
		return outcome(f, backup.OutFailed, "backup check failed: %v", err), true
	}
	s, err := decodeSecret(data)
	if err != nil {
		return outcome(f, backup.OutFailed, "%v", err), true
	}
	sa := s.Annotations[corev1.ServiceAccountNameKey]
	listed := a.backup.Entry(KindServiceAccount, r.Namespace, sa) != nil
	o := a.dropRef(ctx, r.Namespace, r.Name, sa, listed)
	switch {
	case o.Result == OutDeleted && deletedBefore:
		o.Result, o.Message = OutRefRemoved, "deleted by an earlier run; now removed from its service account"
	case o.Result == OutDeleted:
		o.Message = "deleted (finished an interrupted run)"
	case o.Result == backup.OutDeletedRefLeft && deletedBefore:
		o.Result = backup.OutFailed
		o.Message = strings.Replace(o.Message, "deleted, but", "deleted by an earlier run, but", 1)
	}
	return o, true
}
