package legacy

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLimitTakesTheNextWave: ApplyOptions.Limit changes the first N
// eligible Secrets in the scan's order; a run into the same backup
// (reopened, as a resumed migrate does) counts only Secrets no earlier run
// changed, so each run takes the next wave, and an ineligible Secret never
// fills a place.
func TestLimitTakesTheNextWave(t *testing.T) {
	ctx := context.Background()
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: TrackingNamespace, Name: TrackingConfigMap}, Data: map[string]string{"since": dayAgo(400)}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa", UID: "sa-uid"}},
	}
	for i, name := range []string{"a", "b", "c", "d", "used"} {
		s := legacyToken("app", name, "sa")
		s.UID, s.ResourceVersion = types.UID("uid-"+name), "1"+string(rune('0'+i))
		s.Data = map[string][]byte{"token": []byte("t-" + name)}
		if name == "used" {
			s.Labels = map[string]string{LabelLastUsed: dayAgo(1)}
		}
		objs = append(objs, s)
	}
	cs := fake.NewSimpleClientset(objs...)
	dir := filepath.Join(t.TempDir(), "b")
	wave := func(limit int) map[string]string {
		t.Helper()
		b, err := backup.Open(dir, backup.ModeInvalidate, dayOf(now))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now},
			ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), Limit: limit, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, o := range res.Outcomes {
			got[o.Name] = o.Result
		}
		return got
	}
	invalid := func() (n int) {
		for _, name := range []string{"a", "b", "c", "d", "used"} {
			s, _ := cs.CoreV1().Secrets("app").Get(ctx, name, metav1.GetOptions{})
			if s.Labels[LabelInvalidSince] != "" {
				n++
			}
		}
		return n
	}
	for i, want := range []map[string]string{
		{"a": OutInvalidated, "b": OutInvalidated, "c": OutNextWave, "d": OutNextWave, "used": OutSkipUsed},
		{"a": OutAlreadyDone, "b": OutAlreadyDone, "c": OutInvalidated, "d": OutInvalidated, "used": OutSkipUsed},
		{"a": OutAlreadyDone, "b": OutAlreadyDone, "c": OutAlreadyDone, "d": OutAlreadyDone, "used": OutSkipUsed},
	} {
		got := wave(2)
		for name, w := range want {
			if got[name] != w {
				t.Errorf("wave %d: %s is %q, want %q (all: %v)", i+1, name, got[name], w, got)
			}
		}
		if n, w := invalid(), min(2*(i+1), 4); n != w {
			t.Errorf("wave %d: %d Secrets invalid, want %d", i+1, n, w)
		}
	}
}

// TestAllowLeavesUnconfirmedSecretsAlone: with ApplyOptions.Allow, an
// eligible Secret the question did not count is skipped-not-confirmed and
// stays valid; the admitted ones change.
func TestAllowLeavesUnconfirmedSecretsAlone(t *testing.T) {
	ctx := context.Background()
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: TrackingNamespace, Name: TrackingConfigMap}, Data: map[string]string{"since": dayAgo(400)}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa", UID: "sa-uid"}},
	}
	for i, name := range []string{"counted", "new"} {
		s := legacyToken("app", name, "sa")
		s.UID, s.ResourceVersion = types.UID("uid-"+name), "1"+string(rune('0'+i))
		s.Data = map[string][]byte{"token": []byte("t-" + name)}
		objs = append(objs, s)
	}
	cs := fake.NewSimpleClientset(objs...)
	b, err := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeInvalidate, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), Workers: 2,
		Allow: func(ns, name string) bool { return ns == "app" && name == "counted" }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range res.Outcomes {
		got[o.Name] = o.Result
	}
	if got["counted"] != OutInvalidated || got["new"] != OutNotConfirmed {
		t.Fatalf("outcomes %v, want counted invalidated and new %s", got, OutNotConfirmed)
	}
	if s, _ := cs.CoreV1().Secrets("app").Get(ctx, "new", metav1.GetOptions{}); s.Labels[LabelInvalidSince] != "" {
		t.Fatalf("a Secret not confirmed was invalidated: %v", s.Labels)
	}
}
