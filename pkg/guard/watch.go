package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/workqueue"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// The Event a restore leaves on the Secret, for `kubectl describe` and
// `kubectl events`: a warning, since a client the evidence missed still
// presents a token that was meant to go.
const (
	EventReason = "LegacyTokenRestoredOnUse"
	// EventSource is the Event's source.component and the field manager
	// of the restore patch, so that managedFields and the audit log name
	// the guard.
	EventSource = "kubectl-bound-token-guard-watch"
)

// ErrNotStarted marks an error that ended the watch before its first
// list: nothing was guarded.
var ErrNotStarted = errors.New("the guard did not start")

// WatchPermissions are what the watch needs in its namespace (or across
// all of them). RBAC has no metadata-only verb: list and watch on Secrets
// read every Secret's data, whatever the client asks for.
func WatchPermissions() []kubeapi.Permission {
	return []kubeapi.Permission{{Verb: "list", Resource: "secrets"}, {Verb: "watch", Resource: "secrets"}, {Verb: "patch", Resource: "secrets"}}
}

// EventPermissions are what recording the Events takes; without them a
// restore still happens, with a warning.
func EventPermissions() []kubeapi.Permission {
	return []kubeapi.Permission{{Verb: "create", Resource: "events"}}
}

// Restore is one Secret the watch restored.
type Restore struct {
	Namespace, Name string
	UID             types.UID
	// ServiceAccount is the Secret's kubernetes.io/service-account.name.
	ServiceAccount string
	// Day is the last-used day kube-apiserver wrote on the rejected use
	// (written into AnnotationRestoredOnUse).
	Day string
	// InvalidSince is the label the restore removed; LastUsedBefore the
	// value recorded at invalidation.
	InvalidSince, LastUsedBefore string
	// Seen is when the watch received the Secret with its new last-used
	// label; Restored when the apiserver answered the patch.
	Seen, Restored time.Time
	// EventErr is why the Event could not be created (the restore
	// itself stands).
	EventErr error
}

// Failure is a Secret the watch should have restored and had not when it
// ended: the client presenting its token is still refused.
type Failure struct {
	Namespace, Name string
	Err             error
}

// Result is what one run of the watch did.
type Result struct {
	Restored []Restore
	Failed   []Failure
	// Lists counts the lists (the first one and every re-list after 410
	// Gone); Watches the watches started (the first one and every resume).
	Lists, Watches int
}

// Watcher is the guard for clusters without admission policies: it lists
// and watches, for their metadata only, the legacy token Secrets this tool
// invalidated for clean-up, and restores one as soon as kube-apiserver
// writes a new last-used label on it, that is, as soon as a client
// presented its token and was refused (pkg/serviceaccount/legacy.go,
// legacyValidator.Validate calls patchSecretWithLastUsedDate before
// returning the "has been marked invalid" error).
//
// It is level-based: what it restores is decided by Eligible on the
// Secret as it is now, never by remembering what it saw before, so a
// re-list after a dropped watch neither misses a use nor mistakes one.
type Watcher struct {
	// Metadata lists, watches, reads and patches Secrets as
	// PartialObjectMetadata: the tokens never reach this process (though
	// RBAC's list/watch grant would allow it).
	Metadata metadata.Interface
	// Client checks access (SelfSubjectAccessReview) and creates Events.
	Client kubernetes.Interface
	// Namespace is the one namespace watched; "" watches all.
	Namespace string
	// Workers restore at once (default 4): one slow or failing restore
	// must not hold up another Secret's.
	Workers int
	// Now stamps the Events (default time.Now).
	Now func() time.Time
	// OnRestore is called once per restore, OnNote with progress (lists,
	// re-lists, a presented Secret left invalid and why), OnWarning with
	// problems (a restore that failed and is retried, a watch that cannot
	// be re-established). Calls never overlap.
	OnRestore func(Restore)
	OnNote    func(string)
	OnWarning func(string)
	// RetryInitial and RetryMax bound the wait before listing or watching again after
	// an error (default 500 ms doubling to 30 s), and before retrying a
	// failed restore.
	RetryInitial, RetryMax time.Duration

	report sync.Mutex        // serializes the On* calls
	told   map[string]string // noteOnce: the last reason noted per Secret
	// noEvents: the access check said Events cannot be created (warned
	// once, not at every restore).
	noEvents bool
}

var secretsResource = corev1.SchemeGroupVersion.WithResource("secrets")

func (w *Watcher) defaults() {
	if w.Workers < 1 {
		w.Workers = 4
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.RetryInitial <= 0 {
		w.RetryInitial = 500 * time.Millisecond
	}
	if w.RetryMax <= 0 {
		w.RetryMax = 30 * time.Second
	}
}

func (w *Watcher) secrets() metadata.ResourceInterface {
	return w.Metadata.Resource(secretsResource).Namespace(w.Namespace)
}

func (w *Watcher) listOptions() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: GuardedLabelSelector(), FieldSelector: SecretTypeField}
}

// Run guards until ctx ends, then lets the restores already under way
// finish. The error is nil when it ran until ctx ended; it wraps
// ErrNotStarted when the access check or the first list failed, and says
// the guard stopped when it lost its access (401 or 403) while running.
// Failed restores are in the Result, not the error.
func (w *Watcher) Run(ctx context.Context) (Result, error) {
	w.defaults()
	if err := w.checkAccess(ctx); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	s := newState()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](w.RetryInitial, w.RetryMax))
	rv, err := w.relist(ctx, s, q)
	if err != nil {
		q.ShutDown()
		return Result{}, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	n := s.count()
	w.note(fmt.Sprintf("guarding %d legacy token Secret%s invalidated for clean-up %s", n, text.Plural(n), w.where()))

	// A restore under way when ctx ends still finishes (a Secret a client
	// just presented is better restored late than left refused), bounded
	// by restoreTimeout.
	work := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range w.Workers {
		wg.Go(func() {
			for w.work(work, q, s) {
			}
		})
	}
	err = w.follow(ctx, s, q, rv)
	q.ShutDownWithDrain()
	wg.Wait()
	return s.result(), err
}

func (w *Watcher) where() string {
	if w.Namespace == "" {
		return "in all namespaces"
	}
	return "in namespace " + w.Namespace
}

func (w *Watcher) checkAccess(ctx context.Context) error {
	if err := kubeapi.CheckAccess(ctx, w.Client, w.Namespace, WatchPermissions()); err != nil {
		return err
	}
	if err := kubeapi.CheckAccess(ctx, w.Client, w.Namespace, EventPermissions()); err != nil {
		w.warn(fmt.Sprintf("restores will leave no Event: %v", err))
		w.noEvents = true
	}
	return nil
}

// relist lists the selection, makes it the state (a Secret no longer
// listed left it: restored, deleted, or no longer invalid) and queues
// every Secret, so that a use missed while no watch ran is seen now.
func (w *Watcher) relist(ctx context.Context, s *state, q workqueue.TypedRateLimitingInterface[string]) (string, error) {
	l, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*metav1.PartialObjectMetadataList, error) {
		return w.secrets().List(ctx, w.listOptions())
	})
	if err != nil {
		return "", fmt.Errorf("cannot list legacy token Secrets %s: %w", w.where(), err)
	}
	keys := s.replace(l.Items)
	for _, k := range keys {
		q.Add(k)
	}
	return l.ResourceVersion, nil
}

// follow watches from rv until ctx ends: it resumes a watch the server
// closed (kube-apiserver ends every watch after a random time between
// --min-request-timeout and twice that, k8s.io/apiserver
// pkg/endpoints/handlers/get.go, handleWatch) from the last resourceVersion
// seen, lists again when that version is gone (410 Expired: the watch cache
// keeps a window of history only, pkg/storage/cacher/watch_cache_history.go,
// GetIntervalLocked's "too old resource version"), and retries with backoff
// after other errors.
// It returns an error only when it lost its access.
func (w *Watcher) follow(ctx context.Context, s *state, q workqueue.TypedRateLimitingInterface[string], rv string) error {
	wait := w.RetryInitial
	troubled, needList := false, false
	for ctx.Err() == nil {
		var err error
		short := false
		if needList {
			var next string
			if next, err = w.relist(ctx, s, q); err == nil {
				rv, needList = next, false
				w.note(fmt.Sprintf("listed again (the watch's resourceVersion was too old): guarding %d", s.count()))
			}
		} else {
			opts := w.listOptions()
			// Bookmarks keep rv recent while nothing in the selection
			// changes, so that a resume rarely needs a re-list.
			opts.ResourceVersion, opts.AllowWatchBookmarks = rv, true
			start := time.Now()
			var wi watch.Interface
			if wi, err = w.secrets().Watch(ctx, opts); err == nil {
				s.watched()
				rv, needList, err = w.drain(ctx, wi, s, q, rv)
				short = time.Since(start) < time.Second
			} else if gone(err) {
				needList, err = true, nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			if troubled {
				w.note("watching again")
				troubled = false
			}
			wait = w.RetryInitial
			// A watch closed as soon as opened (a proxy's idle
			// timeout, say) is resumed after a pause, not in a loop.
			if short && !needList && !kubeapi.Sleep(ctx, wait) {
				return nil
			}
			continue
		}
		if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return fmt.Errorf("the guard stopped, nothing is guarded now: %w", err)
		}
		if !troubled {
			w.warn(fmt.Sprintf("the watch on legacy token Secrets %s ended: %v; retrying", w.where(), err))
			troubled = true
		}
		if !kubeapi.Sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, w.RetryMax)
	}
	return nil
}

// gone says a watch's resourceVersion is no longer served: list again.
func gone(err error) bool { return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) }

// drain reads one watch until it closes, ctx ends or it reports an
// error; it returns the last resourceVersion seen and whether a re-list
// is needed.
func (w *Watcher) drain(ctx context.Context, wi watch.Interface, s *state, q workqueue.TypedRateLimitingInterface[string], rv string) (string, bool, error) {
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, false, nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return rv, false, nil
			}
			if ev.Type == watch.Error {
				if err := apierrors.FromObject(ev.Object); !gone(err) {
					return rv, false, err
				}
				return rv, true, nil
			}
			m, ok := ev.Object.(*metav1.PartialObjectMetadata)
			if !ok {
				return rv, true, fmt.Errorf("the watch sent a %T", ev.Object)
			}
			if m.ResourceVersion != "" {
				rv = m.ResourceVersion
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				m.SetManagedFields(nil)
				q.Add(s.set(m, time.Now()))
			case watch.Deleted:
				// Restored (by this guard or another), deleted, or no
				// longer invalid: nothing left to restore.
				s.remove(key(m))
			}
		}
	}
}

// work restores one queued Secret; false once the queue is shut down.
func (w *Watcher) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], s *state) bool {
	k, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(k)
	m, seen := s.get(k)
	if m == nil {
		q.Forget(k)
		return true
	}
	r, err := w.restore(ctx, m, seen)
	if err != nil {
		news, still := s.fail(k, err)
		if !still {
			// It left the selection while this try ran.
			q.Forget(k)
			return true
		}
		if news {
			w.warn(fmt.Sprintf("cannot restore %s yet: %v; retrying", k, err))
		}
		q.AddRateLimited(k)
		return true
	}
	q.Forget(k)
	s.succeed(k)
	if r != nil && s.claim(*r) {
		if !w.noEvents {
			r.EventErr = w.event(ctx, *r)
		}
		s.record(*r)
		w.report.Lock()
		if w.OnRestore != nil {
			w.OnRestore(*r)
		}
		w.report.Unlock()
		if r.EventErr != nil {
			w.warn(fmt.Sprintf("restored %s/%s, but could not record an Event on it: %v", r.Namespace, r.Name, r.EventErr))
		}
	}
	return true
}

// restoreTimeout bounds one restore, retries included, also after the
// watch ended.
const restoreTimeout = 30 * time.Second

// restore restores m if Eligible says so: nil, nil when it need not. The
// patch's test operations make it act only on the Secret as judged; when
// one fails the Secret changed meanwhile, and the Secret as it is now is
// judged again.
func (w *Watcher) restore(ctx context.Context, m *metav1.PartialObjectMetadata, seen time.Time) (*Restore, error) {
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	for range 3 {
		ok, why := Eligible(m)
		if !ok {
			if why != WhyNotPresented {
				w.noteOnce(key(m), why, fmt.Sprintf("%s stays invalid: %s", key(m), why))
			}
			return nil, nil
		}
		patch, err := RestorePatch(m)
		if err != nil {
			return nil, err
		}
		res := w.Metadata.Resource(secretsResource).Namespace(m.Namespace)
		// Safe to repeat (retry's rule): a repeat of a patch that went
		// through fails its test operations.
		_, perr := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
			_, err := res.Patch(ctx, m.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: EventSource})
			return err
		})
		if perr == nil {
			return restored(m, seen), nil
		}
		if !testFailed(perr) {
			return nil, perr
		}
		cur, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*metav1.PartialObjectMetadata, error) {
			return res.Get(ctx, m.Name, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, err
		case restoredBy(cur, m):
			// An earlier try went through and its answer was lost, or
			// another guard watch restored it first.
			return restored(m, seen), nil
		case sameTested(cur, m):
			return nil, fmt.Errorf("the apiserver refused the restore patch: %w", perr)
		}
		m = cur
	}
	return nil, fmt.Errorf("it changed under every restore attempt")
}

func restored(m *metav1.PartialObjectMetadata, seen time.Time) *Restore {
	return &Restore{Namespace: m.Namespace, Name: m.Name, UID: m.UID, ServiceAccount: m.Annotations[corev1.ServiceAccountNameKey],
		Day: m.Labels[legacy.LabelLastUsed], InvalidSince: m.Labels[legacy.LabelInvalidSince],
		LastUsedBefore: m.Annotations[legacy.AnnotationLastUsedBefore], Seen: seen, Restored: time.Now()}
}

// testFailed says a JSON patch's test operation failed: the apiserver
// answers 422 with the patch library's message
// (k8s.io/apiserver pkg/endpoints/handlers/patch.go, jsonPatcher.applyJSPatch).
func testFailed(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st) && st.Status().Code == http.StatusUnprocessableEntity
}

// restoredBy says cur is m restored on m's last-used day by a guard watch.
func restoredBy(cur, m *metav1.PartialObjectMetadata) bool {
	_, invalid := cur.Labels[legacy.LabelInvalidSince]
	return cur.UID == m.UID && !invalid && cur.Annotations[legacy.AnnotationRestoredBy] == legacy.RestoredByWatch &&
		cur.Annotations[legacy.AnnotationRestoredOnUse] == m.Labels[legacy.LabelLastUsed]
}

// sameTested says every value RestorePatch tests is the same in a and b:
// a 422 then was not a failed test.
func sameTested(a, b *metav1.PartialObjectMetadata) bool {
	pa, ea := RestorePatch(a)
	pb, eb := RestorePatch(b)
	return ea == nil && eb == nil && string(pa) == string(pb)
}

// JSONPatchOp is one RFC 6902 operation.
type JSONPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// RestorePatch is the JSON patch that restores m: test operations on
// every value Eligible judged (and the uid, so a Secret re-created under
// the same name is not touched), then the removal of the invalid-since
// label and the annotations that say what happened. kube-apiserver
// applies a JSON patch to the object as stored, retrying on a conflict
// (k8s.io/apiserver pkg/endpoints/handlers/patch.go, patchResource), so
// the tests hold at the moment of the write.
func RestorePatch(m metav1.Object) ([]byte, error) {
	l, a := m.GetLabels(), m.GetAnnotations()
	ops := []JSONPatchOp{
		{Op: "test", Path: "/metadata/uid", Value: string(m.GetUID())},
		{Op: "test", Path: labelPath(legacy.LabelInvalidSince), Value: l[legacy.LabelInvalidSince]},
		{Op: "test", Path: labelPath(legacy.LabelLastUsed), Value: l[legacy.LabelLastUsed]},
		{Op: "test", Path: labelPath(legacy.LabelGuardUntil), Value: l[legacy.LabelGuardUntil]},
		{Op: "test", Path: annotationPath(legacy.AnnotationInvalidatedFor), Value: a[legacy.AnnotationInvalidatedFor]},
		{Op: "test", Path: annotationPath(legacy.AnnotationLastUsedBefore), Value: a[legacy.AnnotationLastUsedBefore]},
	}
	if v, ok := a[legacy.AnnotationLastUsedCleared]; ok {
		ops = append(ops, JSONPatchOp{Op: "test", Path: annotationPath(legacy.AnnotationLastUsedCleared), Value: v})
	}
	ops = append(ops,
		JSONPatchOp{Op: "remove", Path: labelPath(legacy.LabelInvalidSince)},
		JSONPatchOp{Op: "add", Path: annotationPath(legacy.AnnotationRestoredOnUse), Value: l[legacy.LabelLastUsed]},
		JSONPatchOp{Op: "add", Path: annotationPath(legacy.AnnotationRestoredBy), Value: legacy.RestoredByWatch},
	)
	return json.Marshal(ops)
}

// escapePointer escapes a map key for a JSON pointer (RFC 6901: "~" as
// "~0", "/" as "~1"), as jsonpatch.escapeKey does for admission policies.
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func labelPath(k string) string      { return "/metadata/labels/" + escapePointer(k) }
func annotationPath(k string) string { return "/metadata/annotations/" + escapePointer(k) }

// EventMessage says what happened and what to do next.
func EventMessage(r Restore) string {
	who := "the client presenting it"
	if r.ServiceAccount != "" {
		who = fmt.Sprintf("the client (kube-apiserver's audit log: user agent and source address of requests by system:serviceaccount:%s:%s)", r.Namespace, r.ServiceAccount)
	}
	return fmt.Sprintf("A client presented this legacy token on %s and was refused: it was invalidated for clean-up (invalid since %s). "+
		"The guard watch removed %s, so the client works again. Find %s, move it to a bound token, then invalidate this Secret again.",
		r.Day, r.InvalidSince, legacy.LabelInvalidSince, who)
}

// event records the restore on the Secret (core/v1 Event, the form
// `kubectl describe` and `kubectl events` show, validated as a legacy
// event: pkg/apis/core/validation/events.go, legacyValidateEvent). Its name
// is fixed before the first try, so a repeat after a lost answer is
// AlreadyExists, not a second Event.
func (w *Watcher) event(ctx context.Context, r Restore) error {
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	now := metav1.NewTime(w.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", r.Name, now.UnixNano()), Namespace: r.Namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: r.Namespace, Name: r.Name,
			UID: r.UID},
		Reason: EventReason, Message: EventMessage(r), Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: EventSource},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	_, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		_, err := w.Client.CoreV1().Events(r.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	return err
}

func (w *Watcher) note(s string) {
	w.report.Lock()
	defer w.report.Unlock()
	if w.OnNote != nil {
		w.OnNote(s)
	}
}

func (w *Watcher) warn(s string) {
	w.report.Lock()
	defer w.report.Unlock()
	if w.OnWarning != nil {
		w.OnWarning(s)
	}
}

// noteOnce notes why a Secret that was presented stays invalid, once per
// reason, however often re-lists bring it back.
func (w *Watcher) noteOnce(k, why, s string) {
	w.report.Lock()
	defer w.report.Unlock()
	if w.told == nil {
		w.told = map[string]string{}
	}
	if w.told[k] == why {
		return
	}
	w.told[k] = why
	if w.OnNote != nil {
		w.OnNote(s)
	}
}

func key(m *metav1.PartialObjectMetadata) string { return m.Namespace + "/" + m.Name }

// state is what the watch knows now: the latest metadata of each Secret
// in the selection (and when it was received), the restores done, and
// the ones failing.
type state struct {
	mu             sync.Mutex
	objs           map[string]*metav1.PartialObjectMetadata
	seen           map[string]time.Time
	failed         map[string]error
	claimed        map[string]bool
	done           []Restore
	lists, watches int
}

func newState() *state {
	return &state{objs: map[string]*metav1.PartialObjectMetadata{}, seen: map[string]time.Time{}, failed: map[string]error{},
		claimed: map[string]bool{}}
}

// replace makes items the whole selection and returns their keys.
func (s *state) replace(items []metav1.PartialObjectMetadata) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	objs := make(map[string]*metav1.PartialObjectMetadata, len(items))
	keys := make([]string, 0, len(items))
	for i := range items {
		m := &items[i]
		m.SetManagedFields(nil)
		k := key(m)
		objs[k] = m
		keys = append(keys, k)
		if old, ok := s.objs[k]; !ok || old.ResourceVersion != m.ResourceVersion {
			s.seen[k] = now
		}
	}
	for k := range s.objs {
		if _, ok := objs[k]; !ok {
			delete(s.seen, k)
			delete(s.failed, k)
		}
	}
	s.objs = objs
	s.lists++
	return keys
}

func (s *state) set(m *metav1.PartialObjectMetadata, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(m)
	s.objs[k], s.seen[k] = m, now
	return k
}

func (s *state) remove(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, k)
	delete(s.seen, k)
	delete(s.failed, k)
}

func (s *state) get(k string) (*metav1.PartialObjectMetadata, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[k], s.seen[k]
}

func (s *state) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs)
}

func (s *state) watched() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watches++
}

// fail records err for k while k is in the selection, and says whether
// it is news (first failure, or a different error) and whether k is
// still there.
func (s *state) fail(k string, err error) (news, still bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[k]; !ok {
		return false, false
	}
	old, ok := s.failed[k]
	s.failed[k] = err
	return !ok || old.Error() != err.Error(), true
}

func (s *state) succeed(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failed, k)
}

// claim says whether r is news: a Secret restored in this run and seen
// again before the watch reported it gone (an event queued behind the
// restore) is found restored by restore's re-read, and is not reported
// (nor given an Event) twice.
func (s *state) claim(r Restore) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(r.UID) + "@" + r.Day
	if s.claimed[k] {
		return false
	}
	s.claimed[k] = true
	return true
}

func (s *state) record(r Restore) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = append(s.done, r)
}

func (s *state) result() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Result{Restored: s.done, Lists: s.lists, Watches: s.watches}
	for k, err := range s.failed {
		ns, name, _ := strings.Cut(k, "/")
		r.Failed = append(r.Failed, Failure{Namespace: ns, Name: name, Err: err})
	}
	sort.Slice(r.Failed, func(i, j int) bool {
		return r.Failed[i].Namespace+"/"+r.Failed[i].Name < r.Failed[j].Namespace+"/"+r.Failed[j].Name
	})
	return r
}
