package legacy

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

// With Stream, an apply hands every outcome on in the order the scan found
// the Secrets, however the workers finish, and keeps none of them.
func TestApplyStreamsOutcomesInScanOrder(t *testing.T) {
	ctx := context.Background()
	objs := []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: TrackingNamespace, Name: TrackingConfigMap}, Data: map[string]string{"since": dayAgo(400)}}}
	for i := 0; i < 40; i++ {
		s := legacyToken("app", fmt.Sprintf("tok-%02d", i), "sa")
		s.UID, s.ResourceVersion = "uid", "7"
		s.Data = map[string][]byte{"token": []byte("x")}
		objs = append(objs, s)
	}
	cs := fake.NewSimpleClientset(objs...)
	// Workers finish out of order: each patch waits a random while.
	delayRandomly(cs, "patch", 1)
	var scanned []string
	if _, err := Scan(ctx, cs, ScanOptions{Namespace: "app", Now: now}, func(f *Finding) error {
		scanned = append(scanned, f.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b, err := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeInvalidate, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var streamed []string
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now, PageSize: 3},
		ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), Workers: 8, Include: Include{Used: true, Unknown: true, Read: true},
			Stream: func(o backup.Outcome) error {
				streamed = append(streamed, o.Name)
				return nil
			}})
	if err != nil {
		t.Fatal(err)
	}
	if len(scanned) != 40 || !slices.Equal(streamed, scanned) {
		t.Errorf("streamed %v\nwant the scan's order %v", streamed, scanned)
	}
	if len(res.Outcomes) != 0 || res.Counts[OutInvalidated] != 40 {
		t.Errorf("kept %d outcomes, counts %v: want none kept and 40 invalidated counted", len(res.Outcomes), res.Counts)
	}
}

// With Stream, a restore hands its outcomes on namespace by namespace in
// order, each namespace's sorted, however its workers finish, and
// returns none.
func TestRestoreStreamsOutcomesNamespaceByNamespace(t *testing.T) {
	ctx := context.Background()
	objs := []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: TrackingNamespace, Name: TrackingConfigMap}, Data: map[string]string{"since": dayAgo(400)}}}
	var want []string
	for n := 0; n < 6; n++ {
		for i := 0; i < 5; i++ {
			ns, name := fmt.Sprintf("ns-%d", n), fmt.Sprintf("tok-%d", i)
			s := legacyToken(ns, name, "sa")
			s.UID, s.ResourceVersion = "uid", "7"
			s.Data = map[string][]byte{"token": []byte("x")}
			objs = append(objs, s)
			want = append(want, ns+"/"+name)
		}
	}
	cs := fake.NewSimpleClientset(objs...)
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeInvalidate, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, cs, b, ScanOptions{Now: now}, ApplyOptions{Mode: backup.ModeInvalidate, Date: dayOf(now), Include: Include{Used: true, Unknown: true, Read: true}})
	b.Close()
	if err != nil || res.Counts[OutInvalidated] != len(want) {
		t.Fatalf("apply: %v %v", err, res.Counts)
	}
	delayRandomly(cs, "*", 2)
	r, err := inspectRestore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	out := Restore(ctx, cs, r, RestoreOptions{Workers: 4, Stream: func(o backup.Outcome) {
		if o.Result != OutLabelRemoved {
			t.Errorf("%s/%s: %s %s", o.Namespace, o.Name, o.Result, o.Message)
		}
		got = append(got, o.Namespace+"/"+o.Name)
	}})
	if len(out) != 0 || !slices.Equal(got, want) {
		t.Errorf("returned %d, streamed %v\nwant %v", len(out), got, want)
	}
}

// delayRandomly makes every verb request on Secrets wait up to 4 ms, the
// same waits for the same seed, so that workers finish out of order.
func delayRandomly(cs *fake.Clientset, verb string, seed int64) {
	var mu sync.Mutex
	rnd := rand.New(rand.NewSource(seed))
	cs.PrependReactor(verb, "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		d := time.Duration(rnd.Intn(5)) * time.Millisecond
		mu.Unlock()
		time.Sleep(d)
		return false, nil, nil
	})
}
