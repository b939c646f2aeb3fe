// Package guardwatch tests `guard watch`, the guard for clusters without
// admission policies, against a real kube-apiserver, etcd and
// kube-controller-manager: legacy Secrets are filled by the real token
// controller, their tokens presented by a plain client (not the plugin),
// refused and labelled last-used by the real apiserver, and restored by
// the watch running in-process. The apiserver closes watches after 2-4 s
// (--min-request-timeout=2), so every run of the watch resumes watches the
// server closed; the audit log shows it did.
package guardwatch

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var (
	cluster *framework.Cluster
	ctx     = context.Background()
)

// trackedDays: legacy token use is tracked since that many days ago, so
// that migrate may call an old Secret unused and the
// kube-controller-manager cleaner may act.
const trackedDays = 400

// watchFor is how long each test's watch runs: long enough for the
// presentations of one test, several server-closed watches included.
const watchFor = 60 * time.Second

// agent is the user agent of the client that presents a token here, as its
// own client would (a plain client, not the plugin).
const agent = "legacy-client/1.0"

func TestMain(m *testing.M) {
	// JSON storage lets a test backdate a Secret through etcd (migrate's
	// verdict, the cleaner's period); the audit log shows the watch
	// resumed; the apiserver closes every watch after 2 to 4 s.
	opts := framework.Options{Name: fmt.Sprintf("guardwatch-%d", os.Getpid()), JSONStorage: true, Audit: true,
		TrackingSince: framework.DaysAgo(trackedDays),
		APIServerArgs: []string{"--min-request-timeout=2"}}
	framework.Main(m, opts, func(c *framework.Cluster) { cluster = c })
}

func run(t *testing.T, args ...string) framework.Result {
	t.Helper()
	return framework.Run(strings.NewReader(""), cluster.Kubeconfig, args...)
}

// watching is a `guard watch -n NS --for 60s` running in-process.
type watching struct {
	ns      string
	started time.Time
	done    chan framework.Result
}

func startWatch(t *testing.T, ns string) *watching {
	t.Helper()
	w := &watching{ns: ns, started: time.Now(), done: make(chan framework.Result, 1)}
	go func() {
		w.done <- framework.Run(strings.NewReader(""), cluster.Kubeconfig, "guard", "watch", "-n", ns, "--for", watchFor.String())
	}()
	return w
}

// wait waits for the watch to end (--for) and checks it ended well.
func (w *watching) wait(t *testing.T) framework.Result {
	t.Helper()
	select {
	case r := <-w.done:
		if took := time.Since(w.started); took < watchFor || took > watchFor+30*time.Second {
			t.Errorf("the watch ran %s, want --for %s", took.Round(time.Second), watchFor)
		}
		return r.MustCode(t, 0)
	case <-time.After(time.Until(w.started.Add(watchFor + 60*time.Second))):
		t.Fatalf("guard watch --for %s did not end", watchFor)
		return framework.Result{}
	}
}

// legacyToken is a fresh legacy token Secret of ServiceAccount app, its
// token filled by the real token controller.
func legacyToken(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return cluster.CreateLegacySecret(t, ns, "app", name, false)
}

func restoredMarks(s *corev1.Secret) bool {
	_, invalid := s.Labels[legacy.LabelInvalidSince]
	return !invalid && s.Annotations[legacy.AnnotationRestoredOnUse] == framework.Day(0) && s.Annotations[legacy.AnnotationRestoredBy] == legacy.RestoredByWatch
}

// healed is the guard's promise: the token is refused once, and accepted
// by a request within 15 s after; the Secret then carries the restore's
// marks (and still our record of the invalidation). It returns how long
// after the refusal the Secret was restored, and the request accepted.
func healed(t *testing.T, s *corev1.Secret) (restored, accepted time.Duration) {
	t.Helper()
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Fatalf("first request with the invalidated token of %s/%s: HTTP %d, want 401", s.Namespace, s.Name, c)
	}
	refused := time.Now()
	var cur *corev1.Secret
	for {
		cur = cluster.GetSecret(t, s.Namespace, s.Name)
		if restoredMarks(cur) {
			restored = time.Since(refused)
			break
		}
		if time.Since(refused) > 15*time.Second {
			t.Fatalf("%s/%s not restored within 15 s of the refused request: labels %v annotations %v", s.Namespace, s.Name, cur.Labels, cur.Annotations)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		if c := cluster.PresentToken(t, s, agent); c == http.StatusCreated {
			accepted = time.Since(refused)
			break
		} else if c != http.StatusUnauthorized {
			t.Fatalf("HTTP %d", c)
		}
		if time.Since(refused) > 15*time.Second {
			t.Fatalf("%s/%s restored, but its token still refused 15 s after the first request", s.Namespace, s.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cur.Labels[legacy.LabelLastUsed] != framework.Day(0) || cur.Annotations[legacy.AnnotationInvalidatedFor] != legacy.InvalidatedForCleanUp ||
		cur.Labels[legacy.LabelGuardUntil] == "" {
		t.Errorf("restored without its record: labels %v annotations %v", cur.Labels, cur.Annotations)
	}
	t.Logf("%s/%s: restored %s after the refused request, a request accepted after %s", s.Namespace, s.Name,
		restored.Round(time.Millisecond), accepted.Round(time.Millisecond))
	return restored, accepted
}

// staysInvalid: the token is refused; kube-apiserver writes last-used
// (else the case proves nothing: the watch had no change to act on); some
// seconds later the Secret is still invalid, unrestored, and refused.
func staysInvalid(t *testing.T, s *corev1.Secret) {
	t.Helper()
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Fatalf("the invalidated token of %s/%s: HTTP %d, want 401", s.Namespace, s.Name, c)
	}
	cluster.Eventually(t, 10*time.Second, func() (bool, error) {
		cur := cluster.GetSecret(t, s.Namespace, s.Name)
		return cur.Labels[legacy.LabelLastUsed] == framework.Day(0), fmt.Errorf("last-used %q: kube-apiserver did not write it, so this case proves nothing", cur.Labels[legacy.LabelLastUsed])
	})
	stillInvalid(t, s)
	if c := cluster.PresentToken(t, s, agent); c != http.StatusUnauthorized {
		t.Errorf("%s/%s presented again: HTTP %d, want 401", s.Namespace, s.Name, c)
	}
}

// stillInvalid waits a few seconds (the watch acts within milliseconds),
// then checks the Secret is still invalid and no restore was recorded
// meanwhile. It presents nothing: a presentation is a use.
func stillInvalid(t *testing.T, s *corev1.Secret) {
	t.Helper()
	before := cluster.GetSecret(t, s.Namespace, s.Name).Annotations[legacy.AnnotationRestoredOnUse]
	time.Sleep(3 * time.Second)
	cur := cluster.GetSecret(t, s.Namespace, s.Name)
	if _, invalid := cur.Labels[legacy.LabelInvalidSince]; !invalid || cur.Annotations[legacy.AnnotationRestoredOnUse] != before {
		t.Errorf("%s/%s restored: labels %v annotations %v", s.Namespace, s.Name, cur.Labels, cur.Annotations)
	}
}

// running fails the test when the watch already ended: the checks so far
// must have run while it watched, or they prove nothing.
func (w *watching) running(t *testing.T) {
	t.Helper()
	if d := time.Since(w.started); d > watchFor-2*time.Second {
		t.Fatalf("the checks took %s, the watch runs %s: they did not all run while it watched", d.Round(time.Second), watchFor)
	}
}

// wantEvent checks the Warning Event the restore left on the Secret.
func wantEvent(t *testing.T, s *corev1.Secret) {
	t.Helper()
	// The watch writes the Event after the patch that restores the Secret
	// (pkg/guard/watch.go): a client may see the Secret healed first.
	var items []corev1.Event
	found := func() (bool, error) {
		l, err := cluster.Client.CoreV1().Events(s.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Secret,involvedObject.name=" + s.Name})
		if err != nil {
			return false, err
		}
		items = l.Items
		for _, e := range l.Items {
			if e.Reason == "LegacyTokenRestoredOnUse" && e.Type == corev1.EventTypeWarning && e.InvolvedObject.UID == s.UID &&
				strings.Contains(e.Message, "system:serviceaccount:"+s.Namespace+":app") && strings.Contains(e.Message, "invalidate this Secret again") {
				return true, nil
			}
		}
		return false, nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := found()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("no LegacyTokenRestoredOnUse Event on %s/%s: %+v", s.Namespace, s.Name, items)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantRestoreLine checks the watch's stdout names exactly the Secrets
// restored, in that order.
func wantRestoreLines(t *testing.T, r framework.Result, names ...*corev1.Secret) {
	t.Helper()
	var want string
	for _, s := range names {
		want += fmt.Sprintf("%s/%s restored: its token was presented on %s (service account app)\n", s.Namespace, s.Name, framework.Day(0))
	}
	if r.Stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want, r.Stderr)
	}
}
