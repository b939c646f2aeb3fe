package rotate

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

// After etcd compacts its history, a watch resumed from an older
// resourceVersion gets 410 Gone. The waiter must read again and go on from
// a resourceVersion that is current, not from the object's own (which stays
// behind while the object does not change, so every new watch would get 410
// again). A second control plane without the watch cache sends watches to
// etcd, where a compaction is the whole window.
func TestWaitReadsAgainWhenResourceVersionExpired(t *testing.T) {
	c, err := framework.Start(framework.Options{Name: fmt.Sprintf("rotate-410-%d", os.Getpid()),
		APIServerArgs: []string{"--min-request-timeout=2", "--watch-cache=false"}})
	if err != nil {
		t.Fatalf("cannot start the second control plane: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	c.InstallCRD(t, "authentications.config.openshift.io", false)
	c.InstallCRD(t, "kubeapiservers.operator.openshift.io", false)
	d, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	op := kasoperator.New(d)
	resetOp(t, op, "", 7, nil)

	reconnects := make(chan string, 1000)
	read := make(chan struct{}, 1)
	w := &openshift.Waiter{Client: d, SinceRevision: 7, RetryDelay: 100 * time.Millisecond,
		OnReconnect: func(r string) { reconnects <- r },
		OnProgress: func(openshift.Progress) {
			select {
			case read <- struct{}{}:
			default:
			}
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type outcome struct {
		p   openshift.Progress
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		p, err := w.Wait(ctx)
		done <- outcome{p, err}
	}()
	select {
	case <-read:
	case o := <-done:
		t.Fatalf("Wait ended before anything happened: %+v %v", o.p, o.err)
	case <-time.After(20 * time.Second):
		t.Fatal("the waiter did not read the object within 20s")
	}
	// Writes elsewhere move etcd past the waiter's resourceVersion R. A
	// watch from R starts at R+1, so the compaction must pass R+1: three
	// writes make sure of it whatever the controllers add.
	moved := c.CreateNamespace(t, "moved")
	for i := range 2 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("move-%d", i)}}
		if _, err := c.Client.CoreV1().ConfigMaps(moved).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rev := c.CompactEtcd(t)

	var seen []string
	expired := func(r string) bool { return strings.HasPrefix(r, "resourceVersion expired") }
	deadline := time.After(20 * time.Second)
	for len(seen) == 0 || !expired(seen[len(seen)-1]) {
		select {
		case r := <-reconnects:
			seen = append(seen, r)
		case o := <-done:
			t.Fatalf("Wait ended before the rollout: %+v %v", o.p, o.err)
		case <-deadline:
			t.Fatalf("no 410 within 20s of compacting etcd at revision %d; reconnects: %q", rev, seen)
		}
	}
	// Quiet for longer than the server keeps a watch open: the watches
	// after the re-read start from a current resourceVersion.
	quiet := time.After(5 * time.Second)
	for waiting := true; waiting; {
		select {
		case r := <-reconnects:
			seen = append(seen, r)
		case <-quiet:
			waiting = false
		}
	}
	if n := count(seen, expired); n != 1 {
		t.Fatalf("%d re-reads for one compaction, want 1: %q", n, seen)
	}

	// The rollout comes after all this; the waiter follows it to the end.
	opCtx, opCancel := context.WithCancel(ctx)
	defer opCancel()
	runOp(t, op, opCtx)
	patch := []byte(`{"spec":{"serviceAccountIssuer":"https://oidc.example.com/after-compaction"}}`)
	if _, err := d.Resource(openshift.AuthenticationGVR).Patch(ctx, "cluster", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if o.err != nil || !o.p.Done || o.p.Revision != 8 {
			t.Fatalf("Wait after the re-read: %+v %v", o.p, o.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the waiter did not see the rollout end within 60s; reconnects: %q", seen)
	}
	t.Logf("etcd compacted at revision %d; reconnects before the rollout: %q", rev, seen)
}

func count(s []string, f func(string) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}
