package legacy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func trackingConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: TrackingNamespace, Name: TrackingConfigMap}, Data: map[string]string{"since": dayAgo(400)}}
}

func readingPod(name, secret string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name}, Spec: podSpecReading(secret)}
}

// TestUnread: of the named Secrets, those nothing reads; the others with
// their readers. Rollout history does not read; readers that cannot be
// listed make a Secret read (unknown), never unread.
func TestUnread(t *testing.T) {
	ctrl := []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: ptr.To(true), APIVersion: "apps/v1"}}
	cs := fake.NewClientset(trackingConfigMap(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}},
		legacyToken("app", "read", "sa"), legacyToken("app", "history", "sa"), legacyToken("app", "free", "sa"), legacyToken("app", "not-asked", "sa"),
		readingPod("p", "read"),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-0", OwnerReferences: ctrl},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Template: corev1.PodTemplateSpec{Spec: podSpecReading("history")}}},
	)
	unread, read, err := Unread(context.Background(), cs, nil, "app", []string{"read", "history", "free"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(unread, " ") != "free history" {
		t.Errorf("unread %v, want [free history]", unread)
	}
	if len(read) != 1 || read["read"] != "pod/p (volume)" {
		t.Errorf("read %v", read)
	}

	cs.PrependReactor("list", "cronjobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "cronjobs"}, "", nil)
	})
	unread, read, err = Unread(context.Background(), cs, nil, "app", []string{"free"})
	if err != nil || len(unread) != 0 || !strings.Contains(read["free"], "cronjobs") {
		t.Errorf("readers unknown: unread %v read %v err %v", unread, read, err)
	}
}

func TestUnreadRefusesANameThatIsNoToken(t *testing.T) {
	cs := fake.NewClientset(trackingConfigMap(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "opaque"}, Type: corev1.SecretTypeOpaque})
	if _, _, err := Unread(context.Background(), cs, nil, "app", []string{"opaque"}); err == nil {
		t.Error("an Opaque Secret was judged")
	}
	if _, _, err := Unread(context.Background(), cs, nil, "app", []string{"missing"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing Secret: %v", err)
	}
}

// afterRollout runs UnreadAfterRollout on a fake clock, stepping it by
// UnreadPoll whenever the call waits; before each step, between is
// called with the number of Unread rounds so far.
func afterRollout(t *testing.T, ctx context.Context, cs *fake.Clientset, between func(rounds int)) ([]string, map[string]string, error, time.Duration, int) {
	t.Helper()
	var rounds atomic.Int32
	cs.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		rounds.Add(1) // one GET of the one name per Unread
		return false, nil, nil
	})
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	type result struct {
		unread []string
		read   map[string]string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		u, r, err := UnreadAfterRollout(ctx, cs, nil, clk, "app", []string{"tok"})
		done <- result{u, r, err}
	}()
	for {
		select {
		case r := <-done:
			return r.unread, r.read, r.err, clk.Since(start), int(rounds.Load())
		case <-time.After(time.Millisecond):
		}
		if clk.HasWaiters() {
			if between != nil {
				between(int(rounds.Load()))
			}
			clk.Step(UnreadPoll)
		}
		if clk.Since(start) > 10*UnreadSettle {
			t.Fatal("UnreadAfterRollout did not stop")
		}
	}
}

func TestUnreadAfterRolloutReturnsAtOnceWhenNothingReads(t *testing.T) {
	cs := fake.NewClientset(trackingConfigMap(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}}, legacyToken("app", "tok", "sa"))
	unread, read, err, waited, rounds := afterRollout(t, context.Background(), cs, nil)
	if err != nil || len(read) != 0 || strings.Join(unread, " ") != "tok" || waited != 0 || rounds != 1 {
		t.Errorf("unread %v read %v err %v after %v and %d rounds; want at once", unread, read, err, waited, rounds)
	}
}

func TestUnreadAfterRolloutWaitsForReplacedPodsToLeave(t *testing.T) {
	cs := fake.NewClientset(trackingConfigMap(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}}, legacyToken("app", "tok", "sa"), readingPod("old", "tok"))
	unread, read, err, waited, rounds := afterRollout(t, context.Background(), cs, func(rounds int) {
		if rounds == 3 {
			cs.CoreV1().Pods("app").Delete(context.Background(), "old", metav1.DeleteOptions{})
		}
	})
	if err != nil || len(read) != 0 || strings.Join(unread, " ") != "tok" {
		t.Errorf("unread %v read %v err %v", unread, read, err)
	}
	if rounds != 4 || waited != 3*UnreadPoll {
		t.Errorf("%d rounds over %v, want 4 over %v", rounds, waited, 3*UnreadPoll)
	}
}

func TestUnreadAfterRolloutStopsAtUnreadSettle(t *testing.T) {
	cs := fake.NewClientset(trackingConfigMap(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}}, legacyToken("app", "tok", "sa"), readingPod("stays", "tok"))
	unread, read, err, waited, rounds := afterRollout(t, context.Background(), cs, nil)
	if err != nil || len(unread) != 0 || read["tok"] != "pod/stays (volume)" {
		t.Errorf("unread %v read %v err %v", unread, read, err)
	}
	if waited <= UnreadSettle-UnreadPoll || waited > UnreadSettle+UnreadPoll {
		t.Errorf("gave up after %v, want about %v", waited, UnreadSettle)
	}
	if want := int(UnreadSettle/UnreadPoll) + 2; rounds > want {
		t.Errorf("%d rounds, want at most %d", rounds, want)
	}
}

func TestUnreadAfterRolloutStopsWithItsContext(t *testing.T) {
	cs := fake.NewClientset(trackingConfigMap(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}}, legacyToken("app", "tok", "sa"), readingPod("stays", "tok"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, read, _, waited, _ := afterRollout(t, ctx, cs, func(rounds int) {
		if rounds == 2 {
			cancel()
		}
	})
	if len(read) != 1 || waited >= UnreadSettle {
		t.Errorf("read %v after %v: did not stop with its context", read, waited)
	}
}

// TestBlockingSecrets: a Secret a template put back would read blocks
// when gone or invalidated, with the migrate backup that holds it.
func TestBlockingSecrets(t *testing.T) {
	parent := t.TempDir()
	switchDir := filepath.Join(parent, "switch-backup")
	if err := os.Mkdir(switchDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A migrate backup next to the switch backup holds "gone".
	mig := filepath.Join(parent, "migrate-backup")
	b, err := backup.Open(mig, backup.ModeDelete, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(secret("app", "gone", "1")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// A switch backup holding a Secret of that name is no place to
	// restore it from.
	sw := filepath.Join(parent, "other-switch")
	b, err = backup.Open(sw, backup.ModeSwitch, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(secret("app", "invalid", "1")); err != nil {
		t.Fatal(err)
	}
	b.Close()

	invalid := legacyToken("app", "invalid", "sa")
	invalid.Labels = map[string]string{LabelInvalidSince: "2026-11-01"}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "opaque", Labels: map[string]string{LabelInvalidSince: "2026-11-01"}}, Type: corev1.SecretTypeOpaque}
	cs := fake.NewClientset(invalid, opaque, legacyToken("app", "valid", "sa"))
	blocked, err := BlockingSecrets(context.Background(), cs, switchDir, "app", []string{"gone", "invalid", "valid", "opaque"})
	if err != nil {
		t.Fatal(err)
	}
	if len(blocked) != 2 {
		t.Fatalf("blocked %q, want gone and invalid", blocked)
	}
	if !strings.HasPrefix(blocked[0], "Secret gone is gone") || !strings.Contains(blocked[0], "restore --from "+mig) {
		t.Errorf("gone: %q", blocked[0])
	}
	if !strings.HasPrefix(blocked[1], "Secret invalid is invalid since 2026-11-01") || strings.Contains(blocked[1], sw) || !strings.Contains(blocked[1], "MIGRATE-BACKUP") {
		t.Errorf("invalid: %q", blocked[1])
	}

	cs.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x", nil)
	})
	if _, err := BlockingSecrets(context.Background(), cs, switchDir, "app", []string{"valid"}); err == nil {
		t.Error("a Secret that cannot be read was taken for not blocking")
	}
}

// TestWhereBackedUpPicksTheNewest: of two migrate backups holding the
// Secret, the one written last.
func TestWhereBackedUpPicksTheNewest(t *testing.T) {
	parent := t.TempDir()
	var dirs []string
	for i, name := range []string{"newer", "older"} {
		d := filepath.Join(parent, name)
		b, err := backup.Open(d, backup.ModeInvalidate, dayOf(now))
		if err != nil {
			t.Fatal(err)
		}
		b.Save(secret("app", "s", "1"))
		b.Close()
		mod := now.Add(-time.Duration(i) * time.Hour)
		os.Chtimes(filepath.Join(d, backup.IndexFile), mod, mod)
		dirs = append(dirs, d)
	}
	got := whereBackedUp(filepath.Join(parent, "switch"), "app", "s")
	if !strings.HasSuffix(got, "--from "+dirs[0]) {
		t.Errorf("%q, want the newer %s", got, dirs[0])
	}
}
