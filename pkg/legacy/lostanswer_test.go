package legacy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// loseFirstAnswer applies the first verb request, then answers it with a
// timeout, as a cut connection would; the retry then meets what the
// apiserver answers a request whose precondition our own write broke.
func loseFirstAnswer(t *testing.T, cs *fake.Clientset, verb string, retryAnswer error) {
	first := true
	cs.PrependReactor(verb, "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if !first {
			return true, nil, retryAnswer
		}
		first = false
		if _, _, err := k8stesting.ObjectReaction(cs.Tracker())(a); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewTimeoutError("answer lost", 1)
	})
}

// TestInvalidateRecognisesItsOwnLostPatch: the retry's conflict is our own
// patch (the Secret is the backup plus our marks): invalidated.
func TestInvalidateRecognisesItsOwnLostPatch(t *testing.T) {
	today := dayOf(now)
	cs, _ := applyFixture(today)
	loseFirstAnswer(t, cs, "patch", apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "tok", nil))
	b, err := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeInvalidate, today)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := Apply(context.Background(), cs, b, ScanOptions{Namespace: "app", Now: now},
		ApplyOptions{Mode: backup.ModeInvalidate, Date: today, GuardDays: 30, Include: Include{Used: true}})
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != OutInvalidated {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if e := b.Entry(KindSecret, "app", "tok"); !e.Results.Has(ResultInvalidated) {
		t.Errorf("not recorded: %v", e.Results)
	}
}

// TestInvalidateConflictOfSomeoneElse: the retry's conflict is someone
// else's change made after our lost patch: left alone.
func TestInvalidateConflictOfSomeoneElse(t *testing.T) {
	today := dayOf(now)
	cs, _ := applyFixture(today)
	first := true
	cs.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if first {
			first = false
			if _, _, err := k8stesting.ObjectReaction(cs.Tracker())(a); err != nil {
				t.Fatal(err)
			}
			// Someone else adds a label after our patch.
			// (through the tracker: the clientset is locked in a reactor)
			o, err := cs.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "app", "tok")
			if err != nil {
				t.Fatal(err)
			}
			s := o.(*corev1.Secret).DeepCopy()
			s.Labels["someone"] = "else"
			cs.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, s, "app")
			return true, nil, apierrors.NewTimeoutError("answer lost", 1)
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "tok", nil)
	})
	b, _ := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeInvalidate, today)
	defer b.Close()
	res, err := Apply(context.Background(), cs, b, ScanOptions{Namespace: "app", Now: now},
		ApplyOptions{Mode: backup.ModeInvalidate, Date: today, GuardDays: 30, Include: Include{Used: true}})
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != backup.OutSkipChanged {
		t.Fatalf("apply: %v %+v", err, res)
	}
}

// TestDeleteRecognisesItsOwnLostDelete: the retry finds the Secret gone,
// as intended: deleted, and the reference removed.
func TestDeleteRecognisesItsOwnLostDelete(t *testing.T) {
	cs := deleteFixture()
	loseFirstAnswer(t, cs, "delete", apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, "tok"))
	b, _ := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeDelete, dayOf(now))
	defer b.Close()
	res, err := Apply(context.Background(), cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeDelete, Date: dayOf(now)})
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != OutDeleted {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if got := saSecrets(t, cs); len(got) != 1 {
		t.Errorf("service account lists %v", got)
	}
}

// TestApplyChecksTheInvalidationFirst: a bad day or guard is refused
// before anything is backed up or changed.
func TestApplyChecksTheInvalidationFirst(t *testing.T) {
	for name, opts := range map[string]ApplyOptions{
		"bad day":        {Mode: backup.ModeInvalidate, Date: "2026-13-01", GuardDays: 30, Include: Include{Used: true}},
		"negative guard": {Mode: backup.ModeInvalidate, Date: dayOf(now), GuardDays: -1, Include: Include{Used: true}},
	} {
		cs, _ := applyFixture(dayOf(now))
		b, _ := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeInvalidate, dayOf(now))
		_, err := Apply(context.Background(), cs, b, ScanOptions{Namespace: "app", Now: now}, opts)
		b.Close()
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		for _, a := range cs.Actions() {
			if a.GetVerb() == "patch" || a.GetVerb() == "delete" {
				t.Errorf("%s: %s sent", name, a.GetVerb())
			}
		}
		if len(b.Index.Order) != 0 {
			t.Errorf("%s: backed up %v", name, b.Index.Order)
		}
	}
	// A revocation has no guard: its guard days do not count.
	cs, _ := applyFixture(dayOf(now))
	b, _ := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeInvalidate, dayOf(now))
	defer b.Close()
	if _, err := Apply(context.Background(), cs, b, ScanOptions{Namespace: "app", Now: now},
		ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), GuardDays: -1, Revoke: true, Include: Include{Used: true}}); err != nil && strings.Contains(err.Error(), "guard") {
		t.Errorf("revocation refused for its guard: %v", err)
	}
}
