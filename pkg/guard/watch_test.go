package guard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// harness runs a Watcher against fakes: a metadata client whose tracker
// holds the Secrets' metadata (lists, gets and JSON patches apply to it)
// and whose watches are fake watchers the test drives, and a typed client
// that allows every access review and stores Events.
type harness struct {
	t  *testing.T
	md *metadatafake.FakeMetadataClient
	cs *fake.Clientset
	w  *Watcher

	mu       sync.Mutex
	watchers []*watch.FakeWatcher // every watch opened, in order
	opened   []metav1.ListOptions
	denied   map[string]bool // "verb resource" the access review denies
	restores []Restore
	notes    []string
	warnings []string
}

func newHarness(t *testing.T, secrets ...*metav1.ObjectMeta) *harness {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("Secret"), &metav1.PartialObjectMetadata{})
	var objs []runtime.Object
	for _, m := range secrets {
		objs = append(objs, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: *m})
	}
	h := &harness{t: t, md: metadatafake.NewSimpleMetadataClient(scheme, objs...), cs: fake.NewClientset(), denied: map[string]bool{}}
	h.md.PrependWatchReactor("secrets", func(a k8stesting.Action) (bool, watch.Interface, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		fw := watch.NewFakeWithChanSize(10, false)
		h.watchers = append(h.watchers, fw)
		h.opened = append(h.opened, a.(k8stesting.WatchActionImpl).ListOptions)
		return true, fw, nil
	})
	h.cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		h.mu.Lock()
		defer h.mu.Unlock()
		ra := r.Spec.ResourceAttributes
		r.Status.Allowed = !h.denied[ra.Verb+" "+ra.Resource]
		return true, r, nil
	})
	h.w = &Watcher{Metadata: h.md, Client: h.cs, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Now:       func() time.Time { return time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) },
		OnRestore: func(r Restore) { h.mu.Lock(); h.restores = append(h.restores, r); h.mu.Unlock() },
		OnNote:    func(s string) { h.mu.Lock(); h.notes = append(h.notes, s); h.mu.Unlock() },
		OnWarning: func(s string) { h.mu.Lock(); h.warnings = append(h.warnings, s); h.mu.Unlock() },
	}
	return h
}

// run starts the watcher; stop ends it and returns what it did.
func (h *harness) run() (stop func() (Result, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		r   Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := h.w.Run(ctx)
		done <- out{r, err}
	}()
	return func() (Result, error) {
		cancel()
		select {
		case o := <-done:
			return o.r, o.err
		case <-time.After(10 * time.Second):
			h.t.Fatal("the watch did not end after its context was cancelled")
			return Result{}, nil
		}
	}
}

// eventually waits for cond, failing the test with what after 5 s.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	// Generous: the whole unit suite shares two cores in CI (seen: 5 s
	// was not enough under a load of 5).
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watcher waits for the n-th watch (from 1) to open and returns it.
func (h *harness) watcher(n int) *watch.FakeWatcher {
	h.t.Helper()
	var fw *watch.FakeWatcher
	h.eventually("watch opened", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.watchers) >= n {
			fw = h.watchers[n-1]
			return true
		}
		return false
	})
	return fw
}

func (h *harness) get(name string) *metav1.PartialObjectMetadata {
	h.t.Helper()
	m, err := h.md.Resource(secretsResource).Namespace("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// update stores m in the tracker (as kube-apiserver's own patch would)
// and returns it as a watch would send it.
func (h *harness) update(m *metav1.ObjectMeta, rv string) *metav1.PartialObjectMetadata {
	h.t.Helper()
	m.ResourceVersion = rv
	o := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: *m}
	if err := h.md.Tracker().Update(secretsResource, o.DeepCopy(), "ns"); err != nil {
		h.t.Fatal(err)
	}
	return o
}

func (h *harness) patches() []string {
	var out []string
	for _, a := range h.md.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			out = append(out, p.GetName())
		}
	}
	return out
}

func (h *harness) events() []corev1.Event {
	h.t.Helper()
	l, err := h.cs.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return l.Items
}

func (h *harness) restored() []Restore {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Restore(nil), h.restores...)
}

func named(name string, edit func(l, a map[string]string)) *metav1.ObjectMeta {
	m := marked(edit)
	m.Name, m.UID = name, types.UID("uid-"+name)
	m.Annotations[corev1.ServiceAccountNameKey] = "builder"
	return m
}

// notYet is a guarded Secret not presented since its invalidation.
func notYet(l, a map[string]string) { delete(l, legacy.LabelLastUsed) }

func isRestored(m *metav1.PartialObjectMetadata, day string) bool {
	_, invalid := m.Labels[legacy.LabelInvalidSince]
	return !invalid && m.Annotations[legacy.AnnotationRestoredOnUse] == day && m.Annotations[legacy.AnnotationRestoredBy] == legacy.RestoredByWatch
}

func TestRestorePatch(t *testing.T) {
	p, err := RestorePatch(marked(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(p, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": "uid-1"},
		{"op": "test", "path": "/metadata/labels/kubernetes.io~1legacy-token-invalid-since", "value": "2026-12-01"},
		{"op": "test", "path": "/metadata/labels/kubernetes.io~1legacy-token-last-used", "value": "2026-12-07"},
		{"op": "test", "path": "/metadata/labels/bound-token.kubectl.io~1guard-until", "value": "2026-12-31"},
		{"op": "test", "path": "/metadata/annotations/bound-token.kubectl.io~1invalidated-for", "value": "clean-up"},
		{"op": "test", "path": "/metadata/annotations/bound-token.kubectl.io~1last-used-before", "value": "none"},
		{"op": "remove", "path": "/metadata/labels/kubernetes.io~1legacy-token-invalid-since"},
		{"op": "add", "path": "/metadata/annotations/bound-token.kubectl.io~1restored-on-use", "value": "2026-12-07"},
		{"op": "add", "path": "/metadata/annotations/bound-token.kubectl.io~1restored-by", "value": "guard-watch"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}

	// The cleared mark is a precondition too, when present.
	p, _ = RestorePatch(marked(func(l, a map[string]string) { a[legacy.AnnotationLastUsedCleared] = "true" }))
	if !strings.Contains(string(p), `{"op":"test","path":"/metadata/annotations/bound-token.kubectl.io~1last-used-cleared","value":"true"}`) {
		t.Errorf("no test of last-used-cleared: %s", p)
	}
}

// A Secret presented while no watch ran is restored by the first list,
// with its Event and its line; the others in the selection are left alone.
func TestWatchRestoresWhatTheFirstListShows(t *testing.T) {
	h := newHarness(t,
		named("presented", nil),
		named("waiting", notYet),
		named("revoked", func(l, a map[string]string) { a[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation }),
		named("late", func(l, a map[string]string) { l[legacy.LabelLastUsed] = "2027-01-02" }),
	)
	stop := h.run()
	h.eventually("restored", func() bool { return isRestored(h.get("presented"), "2026-12-07") })
	h.watcher(1)
	res, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.patches(); !cmp.Equal(got, []string{"presented"}) {
		t.Errorf("patched %v, want only presented", got)
	}
	for _, n := range []string{"waiting", "revoked", "late"} {
		if _, ok := h.get(n).Labels[legacy.LabelInvalidSince]; !ok {
			t.Errorf("%s was restored", n)
		}
	}
	if len(res.Restored) != 1 || res.Restored[0].Name != "presented" || res.Restored[0].Day != "2026-12-07" || res.Restored[0].ServiceAccount != "builder" {
		t.Errorf("Restored = %+v", res.Restored)
	}
	if len(h.restored()) != 1 {
		t.Errorf("OnRestore called %d times", len(h.restored()))
	}
	ev := h.events()
	if len(ev) != 1 {
		t.Fatalf("%d events, want 1", len(ev))
	}
	e := ev[0]
	if e.Reason != EventReason || e.Type != corev1.EventTypeWarning || e.InvolvedObject.Kind != "Secret" || e.InvolvedObject.Name != "presented" ||
		e.InvolvedObject.UID != "uid-presented" || e.Source.Component != EventSource || e.Count != 1 {
		t.Errorf("event %+v", e)
	}
	for _, s := range []string{"2026-12-07", "system:serviceaccount:ns:builder", "bound token", "invalidate this Secret again"} {
		if !strings.Contains(e.Message, s) {
			t.Errorf("event message lacks %q: %s", s, e.Message)
		}
	}
	if res.Lists != 1 || res.Watches < 1 {
		t.Errorf("lists %d, watches %d", res.Lists, res.Watches)
	}
	// The notes say why the presented ones stay invalid.
	notes := strings.Join(h.notes, "\n")
	for _, s := range []string{"ns/revoked stays invalid: " + WhyRevocation, "ns/late stays invalid: " + WhyGuardDayPassed} {
		if !strings.Contains(notes, s) {
			t.Errorf("notes lack %q:\n%s", s, notes)
		}
	}
}

// What the watch lists and watches: the guarded selection of legacy
// token Secrets, resumed from the last resourceVersion with bookmarks.
func TestWatchSelectsGuardedLegacyTokens(t *testing.T) {
	h := newHarness(t, named("waiting", notYet))
	h.w.Namespace = "ns"
	stop := h.run()
	fw := h.watcher(1)
	fw.Action(watch.Bookmark, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "42"}})
	fw.Stop() // the server closes it
	h.watcher(2)
	res, _ := stop()
	var list *k8stesting.ListActionImpl
	for _, a := range h.md.Actions() {
		if l, ok := a.(k8stesting.ListActionImpl); ok {
			list = &l
		}
	}
	if list == nil {
		t.Fatal("no list")
	}
	want, _ := labels.Parse(legacy.LabelInvalidSince + "," + legacy.LabelGuardUntil)
	same := func(s string) bool { got, err := labels.Parse(s); return err == nil && got.String() == want.String() }
	if list.Namespace != "ns" || !same(list.ListOptions.LabelSelector) ||
		list.ListOptions.FieldSelector != "type=kubernetes.io/service-account-token" {
		t.Errorf("list %s %+v", list.Namespace, list.ListOptions)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if o := h.opened[0]; !same(o.LabelSelector) || o.FieldSelector != list.ListOptions.FieldSelector || !o.AllowWatchBookmarks {
		t.Errorf("watch %+v", o)
	}
	if rv := h.opened[1].ResourceVersion; rv != "42" {
		t.Errorf("resumed at %q, want the bookmark's 42", rv)
	}
	if res.Lists != 1 || res.Watches < 2 {
		t.Errorf("a resume listed again: lists %d, watches %d", res.Lists, res.Watches)
	}
}

// A use arrives as a MODIFIED event and is restored at once; the restore
// then leaves the selection (DELETED). A second presentation the same day
// changes nothing, so nothing more happens.
func TestWatchRestoresOnModified(t *testing.T) {
	m := named("s", notYet)
	h := newHarness(t, m)
	stop := h.run()
	fw := h.watcher(1)
	if len(h.patches()) != 0 {
		t.Fatal("restored before any use")
	}
	m.Labels[legacy.LabelLastUsed] = "2026-12-07"
	fw.Modify(h.update(m, "10"))
	h.eventually("restored", func() bool { return isRestored(h.get("s"), "2026-12-07") })
	fw.Delete(h.get("s"))
	res, _ := stop()
	if len(res.Restored) != 1 || len(res.Failed) != 0 {
		t.Errorf("restored %v, failed %v", res.Restored, res.Failed)
	}
	if r := res.Restored[0]; r.Seen.IsZero() || r.Restored.Before(r.Seen) {
		t.Errorf("times: seen %v, restored %v", r.Seen, r.Restored)
	}
}

// 410 Gone on a resume lists again, and that list's Secrets are judged
// as they are now: one presented while the watch was away is restored.
func TestWatchListsAgainWhenTheResourceVersionIsGone(t *testing.T) {
	m := named("s", notYet)
	h := newHarness(t, m)
	stop := h.run()
	fw := h.watcher(1)
	m.Labels[legacy.LabelLastUsed] = "2026-12-07"
	h.update(m, "10") // the watch misses it
	fw.Error(&apierrors.NewResourceExpired("too old resource version: 1 (5)").ErrStatus)
	h.eventually("restored", func() bool { return isRestored(h.get("s"), "2026-12-07") })
	res, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Lists != 2 || len(res.Restored) != 1 {
		t.Errorf("lists %d, restored %v", res.Lists, res.Restored)
	}
}

// The same when the apiserver answers the watch request itself with 410.
func TestWatchListsAgainWhenTheWatchRequestIsGone(t *testing.T) {
	m := named("s", notYet)
	h := newHarness(t, m)
	calls := 0
	h.md.PrependWatchReactor("secrets", func(a k8stesting.Action) (bool, watch.Interface, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		calls++
		if calls == 1 {
			m.Labels[legacy.LabelLastUsed] = "2026-12-07"
			h.update(m, "10")
			return true, nil, apierrors.NewGone("gone")
		}
		return false, nil, nil
	})
	stop := h.run()
	h.eventually("restored", func() bool { return isRestored(h.get("s"), "2026-12-07") })
	res, _ := stop()
	if res.Lists != 2 {
		t.Errorf("lists %d, want 2", res.Lists)
	}
}

// A test operation that fails (the Secret changed since it was seen) is
// not a failure: the Secret is read again and judged as it is now.
func TestWatchJudgesAgainWhenATestOperationFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		// meanwhile changes the stored Secret just before the first patch
		meanwhile func(l, a map[string]string)
		restored  bool
		day       string
	}{
		{"used again on a later day", func(l, a map[string]string) { l[legacy.LabelLastUsed] = "2026-12-08" }, true, "2026-12-08"},
		{"a person revalidated it", func(l, a map[string]string) { delete(l, legacy.LabelInvalidSince) }, false, ""},
		{"turned into a revocation", func(l, a map[string]string) {
			a[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := named("s", nil)
			h := newHarness(t, m)
			first := true
			h.md.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if !first {
					return false, nil, nil
				}
				first = false
				o, err := h.md.Tracker().Get(secretsResource, "ns", "s") // not h.get: Invokes holds the fake's lock
				if err != nil {
					t.Fatal(err)
				}
				cur := o.(*metav1.PartialObjectMetadata)
				tc.meanwhile(cur.Labels, cur.Annotations)
				if err := h.md.Tracker().Update(secretsResource, cur, "ns"); err != nil {
					t.Fatal(err)
				}
				return true, nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{Resource: "secrets"}, "s", "testing value /metadata/labels/... failed", 0, false)
			})
			stop := h.run()
			h.watcher(1)
			if tc.restored {
				h.eventually("restored", func() bool { return isRestored(h.get("s"), tc.day) })
			} else {
				h.eventually("judged again", func() bool { return len(h.patches()) == 1 && first == false })
				time.Sleep(50 * time.Millisecond)
			}
			res, _ := stop()
			if len(res.Failed) != 0 || len(h.warnings) != 0 {
				t.Errorf("failed %v, warnings %v", res.Failed, h.warnings)
			}
			if tc.restored != (len(res.Restored) == 1) {
				t.Errorf("restored %v", res.Restored)
			}
			if !tc.restored {
				if _, ok := h.get("s").Annotations[legacy.AnnotationRestoredOnUse]; ok {
					t.Error("marked restored")
				}
				if len(h.events()) != 0 {
					t.Error("an Event was recorded")
				}
			}
		})
	}
}

// A restore whose answer was lost (the patch went through, the retry's
// tests then fail) is found done on re-reading: one restore, one Event.
func TestWatchRestoreWithALostAnswer(t *testing.T) {
	h := newHarness(t, named("s", nil))
	tries := 0
	h.md.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tries++
		if tries == 1 {
			// Apply it, then lose the answer.
			if _, _, err := k8stesting.ObjectReaction(h.md.Tracker())(a); err != nil {
				t.Fatal(err)
			}
			return true, nil, apierrors.NewServiceUnavailable("lost")
		}
		return true, nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{Resource: "secrets"}, "s", "testing value failed", 0, false)
	})
	stop := h.run()
	h.eventually("reported", func() bool { return len(h.restored()) == 1 })
	res, _ := stop()
	if len(res.Restored) != 1 || len(res.Failed) != 0 || len(h.events()) != 1 || tries != 2 {
		t.Errorf("restored %v, failed %v, events %d, tries %d", res.Restored, res.Failed, len(h.events()), tries)
	}
}

// A Secret seen again after its restore, before the watch reported it
// gone, is not restored, reported or given an Event twice.
func TestWatchReportsARestoreOnce(t *testing.T) {
	m := named("s", nil)
	h := newHarness(t, m)
	stop := h.run()
	fw := h.watcher(1)
	h.eventually("restored", func() bool { return len(h.restored()) == 1 })
	fw.Modify(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: *m})
	h.eventually("patched again", func() bool { return len(h.patches()) == 2 })
	time.Sleep(50 * time.Millisecond)
	res, _ := stop()
	if len(res.Restored) != 1 || len(h.restored()) != 1 || len(h.events()) != 1 {
		t.Errorf("restored %d, reported %d, events %d", len(res.Restored), len(h.restored()), len(h.events()))
	}
}

// A restore the apiserver refuses is retried; one still failing when the
// watch ends is in Failed, and was warned about once.
func TestWatchReportsARestoreThatKeepsFailing(t *testing.T) {
	h := newHarness(t, named("s", nil))
	h.md.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "s", errors.New("no"))
	})
	stop := h.run()
	h.eventually("retried", func() bool { return len(h.patches()) >= 3 })
	res, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Name != "s" || !apierrors.IsForbidden(res.Failed[0].Err) {
		t.Errorf("failed %+v", res.Failed)
	}
	if len(h.warnings) != 1 || !strings.Contains(h.warnings[0], "cannot restore ns/s yet") {
		t.Errorf("warnings %q", h.warnings)
	}
}

// A failing Secret that leaves the selection (deleted, or revalidated by
// a person) is no failure.
func TestWatchForgetsAFailureThatLeft(t *testing.T) {
	m := named("s", nil)
	h := newHarness(t, m)
	h.md.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcd"))
	})
	stop := h.run()
	fw := h.watcher(1)
	h.eventually("failed", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.warnings) > 0 })
	fw.Delete(&metav1.PartialObjectMetadata{ObjectMeta: *m})
	time.Sleep(50 * time.Millisecond)
	res, _ := stop()
	if len(res.Failed) != 0 {
		t.Errorf("failed %+v", res.Failed)
	}
}

func TestWatchDoesNotStart(t *testing.T) {
	t.Run("no patch right", func(t *testing.T) {
		h := newHarness(t, named("s", nil))
		h.denied["patch secrets"] = true
		_, err := h.w.Run(context.Background())
		if !errors.Is(err, ErrNotStarted) || !strings.Contains(err.Error(), "patch secrets") {
			t.Errorf("err %v", err)
		}
		if len(h.md.Actions()) != 0 {
			t.Errorf("acted: %v", h.md.Actions())
		}
	})
	t.Run("list fails", func(t *testing.T) {
		h := newHarness(t)
		h.md.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewUnauthorized("who")
		})
		_, err := h.w.Run(context.Background())
		if !errors.Is(err, ErrNotStarted) || !apierrors.IsUnauthorized(err) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no events right: a warning, and restores go on", func(t *testing.T) {
		h := newHarness(t, named("s", nil))
		h.denied["create events"] = true
		stop := h.run()
		h.eventually("restored", func() bool { return isRestored(h.get("s"), "2026-12-07") })
		if _, err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(h.warnings) != 1 || !strings.Contains(h.warnings[0], "no Event") {
			t.Errorf("warnings %q, want one", h.warnings)
		}
		if len(h.events()) != 0 {
			t.Error("an Event was tried without the right")
		}
	})
}

// Access lost while running ends the watch with an error that says
// nothing is guarded; a watch that cannot be re-established for another
// reason is retried with one warning.
func TestWatchLosesAccess(t *testing.T) {
	h := newHarness(t)
	n := 0
	h.md.PrependWatchReactor("secrets", func(a k8stesting.Action) (bool, watch.Interface, error) {
		n++
		if n <= 2 {
			return true, nil, errors.New("connection refused")
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("no"))
	})
	res, err := h.w.Run(context.Background())
	if err == nil || errors.Is(err, ErrNotStarted) || !strings.Contains(err.Error(), "nothing is guarded now") {
		t.Errorf("err %v", err)
	}
	if len(h.warnings) != 1 || !strings.Contains(h.warnings[0], "connection refused; retrying") {
		t.Errorf("warnings %q", h.warnings)
	}
	if res.Lists != 1 {
		t.Errorf("lists %d", res.Lists)
	}
}

// A 422 whose test operations held (the Secret is as judged) is the
// apiserver refusing the patch itself: a failure naming its answer, not
// a change to follow.
func TestWatchRefusedPatchIsAFailure(t *testing.T) {
	h := newHarness(t, named("s", nil))
	h.md.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{Resource: "secrets"}, "s", "metadata.annotations: Too long", 0, false)
	})
	stop := h.run()
	h.eventually("failed", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.warnings) > 0 })
	res, _ := stop()
	if len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Err.Error(), "the apiserver refused the restore patch: ") ||
		!testFailed(res.Failed[0].Err) {
		t.Errorf("failed %+v", res.Failed)
	}
}
