package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// patchMeta decodes a merge patch's labels and annotations; a nil value
// is a removal.
func patchMeta(t *testing.T, patch []byte) (rv string, labels, ann map[string]*string) {
	t.Helper()
	var p struct {
		Metadata struct {
			ResourceVersion string             `json:"resourceVersion"`
			Labels          map[string]*string `json:"labels"`
			Annotations     map[string]*string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	return p.Metadata.ResourceVersion, p.Metadata.Labels, p.Metadata.Annotations
}

func str(s string) *string { return &s }

// TestInvalidationPatch: one request writes the label and the whole
// record, clears a last-used label kube-apiserver would not write again
// (today, tomorrow, later), and starts a new cycle over a guard's marks.
func TestInvalidationPatch(t *testing.T) {
	today := "2026-12-01"
	clean := ApplyOptions{Mode: backup.ModeInvalidate, Date: today, GuardDays: 90}
	revoke := ApplyOptions{Mode: backup.ModeInvalidate, Date: today, Revoke: true}
	for _, tc := range []struct {
		name     string
		opts     ApplyOptions
		labels   map[string]string
		ann      map[string]string
		wantLbl  map[string]*string
		wantAnn  map[string]*string
		noLabels []string // label keys the patch must not touch
	}{
		{"never used, for clean-up", clean, nil, nil,
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: str("2027-03-01")},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForCleanUp), AnnotationLastUsedBefore: str(LastUsedNone),
				AnnotationLastUsedCleared: nil, AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil},
			[]string{LabelLastUsed}},
		{"used long ago: the label stays", clean, map[string]string{LabelLastUsed: "2026-05-01"}, nil,
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: str("2027-03-01")},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForCleanUp), AnnotationLastUsedBefore: str("2026-05-01"),
				AnnotationLastUsedCleared: nil, AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil},
			[]string{LabelLastUsed}},
		{"used yesterday: kube-apiserver writes today over it", clean, map[string]string{LabelLastUsed: "2026-11-30"}, nil,
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: str("2027-03-01")},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForCleanUp), AnnotationLastUsedBefore: str("2026-11-30"),
				AnnotationLastUsedCleared: nil, AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil},
			[]string{LabelLastUsed}},
		{"used today: cleared", clean, map[string]string{LabelLastUsed: today}, nil,
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: str("2027-03-01"), LabelLastUsed: nil},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForCleanUp), AnnotationLastUsedBefore: str(today),
				AnnotationLastUsedCleared: str("true"), AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil}, nil},
		{"labelled tomorrow: cleared", clean, map[string]string{LabelLastUsed: "2026-12-02"}, nil,
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: str("2027-03-01"), LabelLastUsed: nil},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForCleanUp), AnnotationLastUsedBefore: str("2026-12-02"),
				AnnotationLastUsedCleared: str("true"), AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil}, nil},
		{"revocation: no guard day", revoke, map[string]string{LabelLastUsed: "2026-05-01"}, nil,
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: nil},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForRevocation), AnnotationLastUsedBefore: str("2026-05-01"),
				AnnotationLastUsedCleared: nil, AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil},
			[]string{LabelLastUsed}},
		{"again after a guard's restore: a new cycle", clean,
			map[string]string{LabelLastUsed: today, LabelGuardUntil: "2027-01-01"},
			map[string]string{AnnotationInvalidatedOn: "2026-10-01", AnnotationLastUsedBefore: LastUsedNone, AnnotationRestoredOnUse: today, AnnotationRestoredBy: RestoredByWatch},
			map[string]*string{LabelInvalidSince: str(today), LabelGuardUntil: str("2027-03-01"), LabelLastUsed: nil},
			map[string]*string{AnnotationInvalidatedOn: str(today), AnnotationInvalidatedFor: str(InvalidatedForCleanUp), AnnotationLastUsedBefore: str(today),
				AnnotationLastUsedCleared: str("true"), AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := secret("ns", "s", "7")
			s.Labels = tc.labels
			for k, v := range tc.ann {
				s.Annotations[k] = v
			}
			rv, labels, ann := patchMeta(t, tc.opts.invalidation(s))
			if rv != "7" {
				t.Errorf("precondition resourceVersion %q, want 7", rv)
			}
			if !reflect.DeepEqual(labels, tc.wantLbl) {
				t.Errorf("labels %s, want %s", show(labels), show(tc.wantLbl))
			}
			if !reflect.DeepEqual(ann, tc.wantAnn) {
				t.Errorf("annotations %s, want %s", show(ann), show(tc.wantAnn))
			}
			for _, k := range tc.noLabels {
				if _, ok := labels[k]; ok {
					t.Errorf("the patch touches %s", k)
				}
			}
		})
	}
}

func show(m map[string]*string) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// applyFixture is a cluster of one old, auto-generated Secret whose
// service account lists it, tracked for 400 days.
func applyFixture(lastUsed string) (*fake.Clientset, *corev1.Secret) {
	s := legacyToken("app", "tok", "sa")
	s.UID, s.ResourceVersion = "uid-tok", "7"
	s.Annotations[corev1.ServiceAccountUIDKey] = "sa-uid"
	s.Data = map[string][]byte{"token": []byte("secret-token-value")}
	if lastUsed != "" {
		s.Labels = map[string]string{LabelLastUsed: lastUsed, "team": "a"}
	}
	cs := fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: TrackingNamespace, Name: TrackingConfigMap}, Data: map[string]string{"since": dayAgo(400)}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa", UID: "sa-uid"}, Secrets: []corev1.ObjectReference{{Name: "tok"}}},
		s)
	return cs, s
}

func getTok(t *testing.T, cs *fake.Clientset) *corev1.Secret {
	t.Helper()
	s, err := cs.CoreV1().Secrets("app").Get(context.Background(), "tok", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestApplyMarksAndRestoreRemovesThem: apply writes the label and the
// marks in one precondition-guarded patch (clearing today's last-used),
// recognises its own patch when a record was lost, and restore brings the
// Secret back to its backup, guard and marks gone.
func TestApplyMarksAndRestoreRemovesThem(t *testing.T) {
	ctx := context.Background()
	today := dayOf(now)
	cs, orig := applyFixture(today)
	var patches [][]byte
	cs.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		patches = append(patches, a.(k8stesting.PatchAction).GetPatch())
		return false, nil, nil
	})
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeInvalidate, today)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now},
		ApplyOptions{Mode: backup.ModeInvalidate, Date: today, GuardDays: 30, Include: Include{Used: true}})
	b.Close()
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != OutInvalidated {
		t.Fatalf("apply: %v %+v", err, res)
	}
	// The folder is lean: a Secret done keeps its result in memory, not
	// its backup record (100,000 of them would not fit a laptop's run).
	if e := b.Entry(KindSecret, "app", "tok"); e == nil || e.Backup != nil || !e.Results.Has(ResultInvalidated) {
		t.Errorf("index entry after the apply: %+v, want the result only", e)
	}
	if msg := res.Outcomes[0].Message; !strings.Contains(msg, "guarded until "+dayOf(now.Add(30*day))) || !strings.Contains(msg, "cleared") {
		t.Errorf("outcome message %q", msg)
	}
	if len(patches) != 1 {
		t.Fatalf("%d patches, want one request", len(patches))
	}
	cur := getTok(t, cs)
	wantLabels := map[string]string{"team": "a", LabelInvalidSince: today, LabelGuardUntil: dayOf(now.Add(30 * day))}
	if !reflect.DeepEqual(cur.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", cur.Labels, wantLabels)
	}
	for k, v := range map[string]string{AnnotationInvalidatedOn: today, AnnotationInvalidatedFor: InvalidatedForCleanUp,
		AnnotationLastUsedBefore: today, AnnotationLastUsedCleared: "true"} {
		if cur.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, cur.Annotations[k], v)
		}
	}

	// The trace of our own patch is recognised; kube-apiserver writing
	// last-used since does not hide it; anyone else's change does.
	if !invalidatedFrom(orig, string(orig.UID), cur, "2020-01-01") {
		t.Error("our own patch not recognised")
	}
	written := cur.DeepCopy()
	written.Labels[LabelLastUsed] = today
	if !invalidatedFrom(orig, string(orig.UID), written, "2020-01-01") {
		t.Error("our patch not recognised once kube-apiserver wrote last-used")
	}
	for name, edit := range map[string]func(*corev1.Secret){
		"a foreign label":       func(s *corev1.Secret) { s.Labels["x"] = "y" },
		"other data":            func(s *corev1.Secret) { s.Data["token"] = []byte("other") },
		"another recorded past": func(s *corev1.Secret) { s.Annotations[AnnotationLastUsedBefore] = LastUsedNone },
		"a day not ours":        func(s *corev1.Secret) { s.Labels[LabelInvalidSince] = dayAgo(3) },
	} {
		c := cur.DeepCopy()
		edit(c)
		if invalidatedFrom(orig, string(orig.UID), c, "2020-01-01") {
			t.Errorf("%s: taken for our own patch", name)
		}
	}

	// Restore: back to the backup, last-used put back, no mark left.
	r, err := inspectRestore(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := Restore(ctx, cs, r, RestoreOptions{})
	if len(out) != 1 || out[0].Result != OutLabelRemoved {
		t.Fatalf("restore: %+v", out)
	}
	back := getTok(t, cs)
	if !reflect.DeepEqual(back.Labels, orig.Labels) || !reflect.DeepEqual(back.Annotations, orig.Annotations) {
		t.Errorf("restored labels %v annotations %v, want the backup's %v %v", back.Labels, back.Annotations, orig.Labels, orig.Annotations)
	}
	if out := Restore(ctx, cs, r, RestoreOptions{}); out[0].Result != backup.OutUnchanged {
		t.Errorf("second restore: %+v", out)
	}
}

// TestRevokeTakesTheGuardOff: --revoke invalidates with no guard day, and
// takes the guard off a Secret this tool invalidated for clean-up earlier
// (its token leaked), whatever its verdict; restore never puts it back.
func TestRevokeTakesTheGuardOff(t *testing.T) {
	ctx := context.Background()
	cs, _ := applyFixture(dayAgo(200))
	day := dayAgo(10)
	first := filepath.Join(t.TempDir(), "first")
	b, err := backup.Open(first, backup.ModeInvalidate, day)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: daysAgo(10)}, ApplyOptions{Mode: backup.ModeInvalidate, Date: day, GuardDays: 90}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if g := getTok(t, cs).Labels[LabelGuardUntil]; g == "" {
		t.Fatal("an invalidation for clean-up wrote no guard day")
	}

	// Now its token leaked.
	second := filepath.Join(t.TempDir(), "second")
	b, err = backup.Open(second, backup.ModeInvalidate, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), Revoke: true})
	b.Close()
	if err != nil || res.Outcomes[0].Result != OutInvalidated || !strings.Contains(res.Outcomes[0].Message, "guard removed") {
		t.Fatalf("revoke: %v %+v", err, res.Outcomes)
	}
	cur := getTok(t, cs)
	if _, ok := cur.Labels[LabelGuardUntil]; ok || cur.Annotations[AnnotationInvalidatedFor] != InvalidatedForRevocation || cur.Labels[LabelInvalidSince] != day {
		t.Errorf("after --revoke: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
	// The same folder cannot be finished as a clean-up.
	b, err = backup.Open(second, backup.ModeInvalidate, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	var pe *PurposeError
	if _, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), GuardDays: 90}); !errors.As(err, &pe) || strings.Contains(err.Error(), "--") {
		t.Errorf("clean-up into a revocation's folder: %v", err)
	}
	b.Close()

	// Restoring the revocation's backup (taken while guarded) does not
	// put the guard back; the marks of the first invalidation are
	// as backed up.
	r, err := inspectRestore(second)
	if err != nil {
		t.Fatal(err)
	}
	if out := Restore(ctx, cs, r, RestoreOptions{}); out[0].Result != OutMarksRestored {
		t.Fatalf("restore: %+v", out)
	}
	cur = getTok(t, cs)
	if _, ok := cur.Labels[LabelGuardUntil]; ok || cur.Labels[LabelInvalidSince] != day || cur.Annotations[AnnotationInvalidatedFor] != InvalidatedForCleanUp {
		t.Errorf("restore of a revocation: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
}

// TestRestoreMarks: what restore changes, key by key.
func TestRestoreMarks(t *testing.T) {
	backedUp := func(labels, ann map[string]string) *corev1.Secret {
		s := secret("ns", "s", "7")
		s.Labels = labels
		for k, v := range ann {
			s.Annotations[k] = v
		}
		return s
	}
	invalidated := map[string]string{LabelInvalidSince: "2026-12-01", LabelGuardUntil: "2027-03-01"}
	marks := map[string]string{AnnotationInvalidatedOn: "2026-12-01", AnnotationInvalidatedFor: InvalidatedForCleanUp, AnnotationLastUsedBefore: "2026-12-01", AnnotationLastUsedCleared: "true"}
	for _, tc := range []struct {
		name          string
		want, cur     *corev1.Secret
		labels, annos map[string]any
	}{
		{"our invalidation, cleared label not written since", backedUp(map[string]string{LabelLastUsed: "2026-12-01"}, nil), backedUp(invalidated, marks),
			map[string]any{LabelInvalidSince: nil, LabelGuardUntil: nil, LabelLastUsed: "2026-12-01"},
			map[string]any{AnnotationInvalidatedOn: nil, AnnotationInvalidatedFor: nil, AnnotationLastUsedBefore: nil, AnnotationLastUsedCleared: nil}},
		{"kube-apiserver wrote last-used since: kept", backedUp(map[string]string{LabelLastUsed: "2026-11-01"}, nil),
			backedUp(map[string]string{LabelInvalidSince: "2026-12-01", LabelGuardUntil: "2027-03-01", LabelLastUsed: "2026-12-05"}, marks),
			map[string]any{LabelInvalidSince: nil, LabelGuardUntil: nil},
			map[string]any{AnnotationInvalidatedOn: nil, AnnotationInvalidatedFor: nil, AnnotationLastUsedBefore: nil, AnnotationLastUsedCleared: nil}},
		{"restored by a guard: marks go", backedUp(nil, nil),
			backedUp(map[string]string{LabelGuardUntil: "2027-03-01", LabelLastUsed: "2026-12-05"}, map[string]string{AnnotationInvalidatedOn: "2026-12-01", AnnotationRestoredOnUse: "2026-12-05", AnnotationRestoredBy: RestoredByPolicy}),
			map[string]any{LabelGuardUntil: nil},
			map[string]any{AnnotationInvalidatedOn: nil, AnnotationRestoredOnUse: nil, AnnotationRestoredBy: nil}},
		{"an old tool's backup and invalidation: the label alone", backedUp(nil, nil), backedUp(map[string]string{LabelInvalidSince: "2025-01-01"}, nil),
			map[string]any{LabelInvalidSince: nil}, map[string]any{}},
		{"backed up guarded: the guard is not put back", backedUp(invalidated, marks), backedUp(map[string]string{LabelInvalidSince: "2026-12-01"}, map[string]string{AnnotationInvalidatedOn: "2026-12-01", AnnotationInvalidatedFor: InvalidatedForRevocation, AnnotationLastUsedBefore: "2026-12-01", AnnotationLastUsedCleared: "true"}),
			map[string]any{}, map[string]any{AnnotationInvalidatedFor: InvalidatedForCleanUp}},
		{"as backed up", backedUp(nil, nil), backedUp(nil, nil), map[string]any{}, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, ann := restoreMarks(tc.want, tc.cur)
			if tc.labels == nil {
				tc.labels = map[string]any{}
			}
			if !reflect.DeepEqual(labels, tc.labels) || !reflect.DeepEqual(ann, tc.annos) {
				t.Errorf("labels %v annotations %v, want %v %v", labels, ann, tc.labels, tc.annos)
			}
		})
	}
}

// inspectRestore opens a whole backup folder for a restore, as the
// restore command does.
func inspectRestore(dir string) (*Restorable, error) {
	f, err := backup.Inspect(dir)
	if err != nil {
		return nil, err
	}
	return OpenRestore(f, nil)
}
