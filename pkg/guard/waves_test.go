package guard

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

const waveDay = "2026-12-07"

// waveCluster is a metadata fake holding valid legacy token Secrets and a
// stand-in for legacy.Apply that invalidates the next one (as migrate
// writes it) per wave, and the counter /metrics would show.
type waveCluster struct {
	t    *testing.T
	md   *metadatafake.FakeMetadataClient
	mu   sync.Mutex
	left []string
	// after runs once a wave's Secret is invalidated: a client presents
	// it, a guard restores it, or another token's client is refused.
	after func(name string)
	uses  float64
	waves int
}

func newWaveCluster(t *testing.T, names ...string) *waveCluster {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("Secret"), &metav1.PartialObjectMetadata{})
	var objs []runtime.Object
	for _, n := range names {
		objs = append(objs, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: n, Labels: map[string]string{legacy.LabelLastUsed: "2026-01-01"}}})
	}
	return &waveCluster{t: t, md: metadatafake.NewSimpleMetadataClient(scheme, objs...), left: names}
}

func (c *waveCluster) edit(name string, fn func(m *metav1.PartialObjectMetadata)) {
	c.t.Helper()
	r := c.md.Resource(secretsResource).Namespace("app")
	m, err := r.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Error(err)
		return
	}
	fn(m)
	m.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	if err := c.md.Tracker().Update(secretsResource, m, "app"); err != nil {
		c.t.Error(err)
	}
}

// apply invalidates the next Secret, as a wave of size 1 would.
func (c *waveCluster) apply(context.Context) (*legacy.ApplyResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := &legacy.ApplyResult{Counts: map[string]int{}}
	if len(c.left) == 0 {
		return res, nil
	}
	c.waves++
	name := c.left[0]
	c.left = c.left[1:]
	c.edit(name, func(m *metav1.PartialObjectMetadata) {
		m.Labels[legacy.LabelInvalidSince] = waveDay
		m.Labels[legacy.LabelGuardUntil] = "2027-03-07"
		m.Annotations = map[string]string{legacy.AnnotationInvalidatedOn: waveDay, legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp,
			legacy.AnnotationLastUsedBefore: "2026-01-01"}
	})
	res.Outcomes = append(res.Outcomes, backup.Outcome{Namespace: "app", Name: name, Result: legacy.OutInvalidated})
	for _, n := range c.left {
		res.Outcomes = append(res.Outcomes, backup.Outcome{Namespace: "app", Name: n, Result: legacy.OutNextWave})
	}
	for _, o := range res.Outcomes {
		res.Counts[o.Result]++
	}
	if c.after != nil {
		after := c.after
		time.AfterFunc(20*time.Millisecond, func() { c.mu.Lock(); defer c.mu.Unlock(); after(name) })
	}
	return res, nil
}

func (c *waveCluster) readUses(context.Context) (float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uses, nil
}

func (c *waveCluster) run(t *testing.T, uses bool) (*WavesResult, []string) {
	t.Helper()
	var notes []string
	w := &Waves{Watch: 300 * time.Millisecond, Poll: 10 * time.Millisecond, Apply: c.apply, Metadata: c.md,
		OnNote: func(s string) { notes = append(notes, s) }}
	if uses {
		w.Uses = c.readUses
	}
	res, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res, notes
}

func results(res *WavesResult) map[string]string {
	m := map[string]string{}
	for _, o := range res.Outcomes {
		m[o.Name] = o.Result
	}
	return m
}

// A presentation kube-apiserver records: last-used written anew.
func presentIt(c *waveCluster) func(string) {
	return func(name string) {
		c.uses++
		c.edit(name, func(m *metav1.PartialObjectMetadata) { m.Labels[legacy.LabelLastUsed] = waveDay })
	}
}

func TestWavesGoOnWhileQuiet(t *testing.T) {
	c := newWaveCluster(t, "a", "b", "c")
	res, _ := c.run(t, true)
	if res.Stopped != "" || len(res.Waves) != 3 || c.waves != 3 {
		t.Fatalf("stopped %q after %d waves (%d applied), want 3 quiet waves", res.Stopped, len(res.Waves), c.waves)
	}
	for _, w := range res.Waves {
		if w.Result != WaveQuiet || len(w.Secrets) != 1 {
			t.Errorf("wave %+v", w)
		}
	}
	if got := results(res); got["a"] != legacy.OutInvalidated || got["b"] != legacy.OutInvalidated || got["c"] != legacy.OutInvalidated {
		t.Errorf("outcomes %v: each Secret's own wave's outcome, not a later next-wave", got)
	}
}

func TestWavesStopWhenPresented(t *testing.T) {
	c := newWaveCluster(t, "a", "b", "c")
	c.after = presentIt(c)
	res, _ := c.run(t, true)
	if len(res.Waves) != 1 || c.waves != 1 {
		t.Fatalf("%d waves, want the run stopped after the first", len(res.Waves))
	}
	w := res.Waves[0]
	if w.Result != WavePresented || len(w.Presented) != 1 || w.Presented[0].Name != "a" || w.Presented[0].Day != waveDay {
		t.Fatalf("wave %+v", w)
	}
	for _, want := range []string{"app/a (presented on " + waveDay, "still invalid", "audit log"} {
		if !strings.Contains(res.Stopped, want) {
			t.Errorf("stop report %q lacks %q", res.Stopped, want)
		}
	}
	if got := results(res); got["b"] != legacy.OutNextWave || got["c"] != legacy.OutNextWave {
		t.Errorf("outcomes %v: the later waves are left", got)
	}
}

// A last-used change on an earlier wave's Secret stops the run too.
func TestWavesWatchEarlierWaves(t *testing.T) {
	c := newWaveCluster(t, "a", "b", "c")
	c.after = func(name string) {
		if name == "b" {
			presentIt(c)("a")
		}
	}
	res, _ := c.run(t, true)
	if len(res.Waves) != 2 || res.Waves[1].Result != WavePresented || res.Waves[1].Presented[0].Name != "a" {
		t.Fatalf("waves %+v", res.Waves)
	}
}

func TestWavesStopWhenRestored(t *testing.T) {
	c := newWaveCluster(t, "a", "b")
	// What either guard leaves: invalid-since gone, the day recorded.
	c.after = func(name string) {
		c.uses++
		c.edit(name, func(m *metav1.PartialObjectMetadata) {
			delete(m.Labels, legacy.LabelInvalidSince)
			m.Labels[legacy.LabelLastUsed] = waveDay
			m.Annotations[legacy.AnnotationRestoredOnUse] = waveDay
			m.Annotations[legacy.AnnotationRestoredBy] = legacy.RestoredByPolicy
		})
	}
	res, _ := c.run(t, true)
	if len(res.Waves) != 1 || res.Waves[0].Result != WaveRestored || res.Waves[0].Presented[0].RestoredBy != legacy.RestoredByPolicy {
		t.Fatalf("waves %+v", res.Waves)
	}
	if !strings.Contains(res.Stopped, "restored by the guard "+legacy.RestoredByPolicy) {
		t.Errorf("stop report %q", res.Stopped)
	}
}

func TestWavesStopOnAnUnknownRejectedClient(t *testing.T) {
	c := newWaveCluster(t, "a", "b")
	c.after = func(string) { c.uses += 3 } // refused, on no Secret of the run
	res, _ := c.run(t, true)
	if len(res.Waves) != 1 || res.Waves[0].Result != WaveUnknownClient {
		t.Fatalf("waves %+v", res.Waves)
	}
	if !strings.Contains(res.Stopped, "cannot be told") || !strings.Contains(res.Stopped, "from 0 to 3") {
		t.Errorf("stop report %q", res.Stopped)
	}
}

// Without /metrics the waves go on, watching the Secrets only, and say
// once what goes unseen.
func TestWavesWithoutMetrics(t *testing.T) {
	c := newWaveCluster(t, "a", "b")
	c.after = func(string) { c.uses += 3 }
	var calls int
	w := &Waves{Watch: 100 * time.Millisecond, Poll: 10 * time.Millisecond, Apply: c.apply, Metadata: c.md,
		Uses: func(context.Context) (float64, error) { calls++; return 0, errors.New("forbidden") }}
	var notes []string
	w.OnNote = func(s string) { notes = append(notes, s) }
	res, err := w.Run(context.Background())
	if err != nil || res.Stopped != "" || len(res.Waves) != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	if calls != 1 || len(notes) != 1 || !strings.Contains(notes[0], "cannot read "+InvalidUsesMetric) {
		t.Errorf("%d reads, notes %q", calls, notes)
	}
}

func TestPresentedSince(t *testing.T) {
	ours := func() *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Namespace: "app", Name: "s",
			Labels: map[string]string{legacy.LabelInvalidSince: waveDay, legacy.LabelGuardUntil: "2026-12-20", legacy.LabelLastUsed: "2026-01-01"},
			Annotations: map[string]string{legacy.AnnotationInvalidatedOn: waveDay, legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp,
				legacy.AnnotationLastUsedBefore: "2026-01-01"}}
	}
	for _, c := range []struct {
		name string
		edit func(m *metav1.ObjectMeta)
		want bool
	}{
		{"not presented", func(*metav1.ObjectMeta) {}, false},
		{"presented", func(m *metav1.ObjectMeta) { m.Labels[legacy.LabelLastUsed] = waveDay }, true},
		{"presented past its guard day", func(m *metav1.ObjectMeta) { m.Labels[legacy.LabelLastUsed] = "2027-01-01" }, true},
		{"restored", func(m *metav1.ObjectMeta) {
			delete(m.Labels, legacy.LabelInvalidSince)
			m.Annotations[legacy.AnnotationRestoredOnUse] = waveDay
		}, true},
		{"label removed by a person", func(m *metav1.ObjectMeta) { delete(m.Labels, legacy.LabelInvalidSince) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := ours()
			c.edit(m)
			if _, got := PresentedSince(m); got != c.want {
				t.Errorf("PresentedSince = %v, want %v", got, c.want)
			}
		})
	}
}
