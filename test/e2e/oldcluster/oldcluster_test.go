package oldcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var ctx = context.Background()

const day = 24 * time.Hour

// period is the cleaner's default --legacy-service-account-token-clean-up-period.
const period = 365 * day

func TestBackdatedSecretReadsBackAndKeepsEveryOtherByte(t *testing.T) {
	ns := cluster.CreateNamespace(t, "backdate")
	s := cluster.CreateLegacySecret(t, ns, "app", "tok", true)
	key := framework.EtcdKey(schema.GroupResource{Resource: "secrets"}, ns, "tok")
	before, _ := cluster.EtcdGet(t, key)
	if before == nil {
		t.Fatalf("no etcd key %s: the key layout is wrong", key)
	}
	created := framework.DaysAgo(400).Truncate(time.Second)
	cluster.BackdateSecret(t, ns, "tok", created)

	got := cluster.GetSecret(t, ns, "tok")
	if !got.CreationTimestamp.Time.Equal(created) {
		t.Fatalf("creationTimestamp %s, want %s", got.CreationTimestamp.UTC(), created)
	}
	if got.UID != s.UID || !bytes.Equal(got.Data["token"], s.Data["token"]) {
		t.Fatal("the backdated Secret lost its uid or token")
	}
	// Only the timestamp's text changed in storage.
	after, _ := cluster.EtcdGet(t, key)
	oldStamp := []byte(`"` + s.CreationTimestamp.UTC().Format(time.RFC3339) + `"`)
	newStamp := []byte(`"` + created.Format(time.RFC3339) + `"`)
	if !bytes.Equal(bytes.Replace(after, newStamp, oldStamp, 1), before) {
		t.Fatalf("stored bytes changed beyond creationTimestamp:\nbefore %s\nafter  %s", before, after)
	}
	// A list served by the watch cache (what an informer does first) sees
	// the old age too.
	l, err := cluster.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range l.Items {
		if it.Name == "tok" && !it.CreationTimestamp.Time.Equal(created) {
			t.Fatalf("watch-cache list: creationTimestamp %s, want %s", it.CreationTimestamp.UTC(), created)
		}
	}
}

func TestTrackingSinceReadsBackAndStays(t *testing.T) {
	old := framework.DaysAgo(400)
	cluster.SetTrackingSince(t, old)
	if got, want := cluster.TrackingSince(t), old.Format(framework.DayFormat); got != want {
		t.Fatalf("since %q, want %q", got, want)
	}
	// kube-apiserver's tracking controller leaves a valid date alone: it is
	// still ours after its informer has seen our write.
	time.Sleep(3 * time.Second)
	if got, want := cluster.TrackingSince(t), old.Format(framework.DayFormat); got != want {
		t.Fatalf("since became %q, want %q to stay", got, want)
	}
	cluster.SetTrackingSince(t, time.Now())
	if got, want := cluster.TrackingSince(t), time.Now().UTC().Format(framework.DayFormat); got != want {
		t.Fatalf("since %q, want %q", got, want)
	}
}

func TestAuditLogHasMetadataEvents(t *testing.T) {
	if cluster.AuditLog == "" {
		t.Fatal("Options.Audit set but Cluster.AuditLog is empty")
	}
	cfg := rest.CopyConfig(cluster.RESTConfig)
	cfg.UserAgent = "oldcluster-audit-probe/1"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// The log backend blocks the response until the event is written.
	f, err := os.Open(cluster.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	stages := map[string]bool{}
	for sc.Scan() {
		var ev struct {
			Level, Stage, Verb, UserAgent, RequestURI string
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if ev.UserAgent == cfg.UserAgent && ev.RequestURI == "/api/v1/namespaces/default" {
			if ev.Level != "Metadata" || ev.Verb != "get" {
				t.Fatalf("event level %q verb %q, want Metadata get", ev.Level, ev.Verb)
			}
			stages[ev.Stage] = true
		}
	}
	if !stages["ResponseComplete"] {
		t.Fatalf("no ResponseComplete event for our request in %s (stages seen: %v)", cluster.AuditLog, stages)
	}
}

// TestRealCleanerOnBackdatedCluster runs kube-controller-manager's own
// cleaner on Secrets made old by the helpers, and checks it decides as
// CONTEXT.md ("Legacy token Secrets") says it does.
func TestRealCleanerOnBackdatedCluster(t *testing.T) {
	ns := cluster.CreateNamespace(t, "cleaner")
	core := cluster.Client.CoreV1()
	old := framework.DaysAgo(400)
	for _, s := range []struct {
		name   string
		listed bool
	}{
		{"auto-old", true},      // invalidated: every rule holds
		{"used-long-ago", true}, // invalidated: last used 380 days ago, more than one period
		{"manual-old", false},   // kept: not in its ServiceAccount's .secrets
		{"used-recently", true}, // kept: last used 20 days ago
		{"mounted-old", true},   // kept: a Pending pod's secret volume
		{"pulled-old", true},    // kept: a Succeeded pod's imagePullSecrets
		{"young", true},         // kept: created less than one period ago
	} {
		cluster.CreateLegacySecret(t, ns, "app", s.name, s.listed)
		if s.name != "young" {
			cluster.BackdateSecret(t, ns, s.name, old)
		}
	}
	cluster.SetLastUsed(t, ns, "used-recently", framework.DaysAgo(20))
	cluster.SetLastUsed(t, ns, "used-long-ago", framework.DaysAgo(380))

	pending := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/x"}},
			Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "mounted-old"}}}},
		},
	}
	if _, err := core.Pods(ns).Create(ctx, pending, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	finished := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "finished"},
		Spec: corev1.PodSpec{
			RestartPolicy:    corev1.RestartPolicyNever,
			Containers:       []corev1.Container{{Name: "c", Image: "registry.invalid/x"}},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pulled-old"}},
		},
	}
	p, err := core.Pods(ns).Create(ctx, finished, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No kubelet runs here: the pod is finished by writing its status, as
	// a kubelet would.
	p.Status.Phase = corev1.PodSucceeded
	if _, err := core.Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	inNS := func(names []string) []string {
		var out []string
		for _, n := range names {
			if s, ok := strings.CutPrefix(n, ns+"/"); ok {
				out = append(out, s)
			}
		}
		return out
	}
	invalidSince := func(name string) string { return cluster.GetSecret(t, ns, name).Labels[framework.InvalidSinceLabel] }
	all := []string{"auto-old", "used-long-ago", "manual-old", "used-recently", "mounted-old", "pulled-old", "young"}

	t.Run("tracking began today: the cleaner does nothing", func(t *testing.T) {
		cluster.SetTrackingSince(t, time.Now())
		run := cluster.RunLegacyTokenCleanerOnce(t, period)
		if len(run.Invalidated)+len(run.Deleted) > 0 {
			t.Fatalf("invalidated %v, deleted %v; want nothing while now < since + 1 day + period (log %s)", run.Invalidated, run.Deleted, run.Log)
		}
		for _, n := range all {
			if v := invalidSince(n); v != "" {
				t.Errorf("%s labelled invalid-since %s", n, v)
			}
		}
	})

	today := time.Now().UTC().Format(framework.DayFormat)
	t.Run("tracking began 400 days ago: only unused, unread, auto-generated old tokens are invalidated", func(t *testing.T) {
		cluster.SetTrackingSince(t, old)
		run := cluster.RunLegacyTokenCleanerOnce(t, period)
		want := []string{"auto-old", "used-long-ago"}
		if got := inNS(run.Invalidated); !slices.Equal(got, want) {
			t.Fatalf("cleaner invalidated %v in %s, want %v (log %s)", got, ns, want, run.Log)
		}
		if len(run.Deleted) > 0 {
			t.Fatalf("cleaner deleted %v; nothing was invalid before", run.Deleted)
		}
		for _, n := range all {
			w := ""
			if slices.Contains(want, n) {
				w = today
			}
			if v := invalidSince(n); v != w {
				t.Errorf("%s: invalid-since %q, want %q", n, v, w)
			}
		}
	})

	t.Run("invalid for more than a period: deleted; invalid since today: kept", func(t *testing.T) {
		patch := `{"metadata":{"labels":{"` + framework.InvalidSinceLabel + `":"` + framework.DaysAgo(366).Format(framework.DayFormat) + `"}}}`
		if _, err := core.Secrets(ns).Patch(ctx, "auto-old", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		run := cluster.RunLegacyTokenCleanerOnce(t, period)
		if got := inNS(run.Deleted); !slices.Equal(got, []string{"auto-old"}) {
			t.Fatalf("cleaner deleted %v in %s, want [auto-old] (log %s)", got, ns, run.Log)
		}
		if got := inNS(run.Invalidated); len(got) > 0 {
			t.Fatalf("cleaner invalidated %v again", got)
		}
		if _, err := core.Secrets(ns).Get(ctx, "auto-old", metav1.GetOptions{}); err == nil {
			t.Fatal("auto-old still exists")
		}
		if v := invalidSince("used-long-ago"); v != today {
			t.Fatalf("used-long-ago: invalid-since %q, want %q", v, today)
		}
	})
}
