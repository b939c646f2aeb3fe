package fleetapply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

func TestSizesStartWithOneAndGrow(t *testing.T) {
	for _, tc := range []struct {
		n, growth int
		want      []int
	}{
		{0, 2, nil},
		{1, 2, []int{1}},
		{3, 2, []int{1, 2}},
		{7, 2, []int{1, 2, 4}},
		{10, 2, []int{1, 2, 4, 3}},
		{4, 1, []int{1, 1, 1, 1}},
		{20, 3, []int{1, 3, 9, 7}},
	} {
		got, err := Sizes(tc.n, tc.growth)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Sizes(%d, %d) = %v, %v; want %v", tc.n, tc.growth, got, err, tc.want)
		}
	}
	if _, err := Sizes(3, 0); err == nil {
		t.Error("growth 0 accepted")
	}
}

func TestStopReasonNamesEveryClusterNotDone(t *testing.T) {
	if why := StopReason(1, []Outcome{{Context: "a", State: Done}, {Context: "b", State: Skipped}}); why != "" {
		t.Errorf("done and skipped stop the run: %q", why)
	}
	for _, state := range []string{Failed, ClientSeen, Unreachable} {
		why := StopReason(2, []Outcome{{Context: "a", State: Done}, {Context: "b", State: state}})
		if why != "cluster wave 2: b "+state+"; the later waves were not started" {
			t.Errorf("state %s: %q", state, why)
		}
	}
}

// fakeChange records which clusters were changed, and answers each with
// the state states gives it (Done by default).
type fakeChange struct {
	mu      sync.Mutex
	changed []string
	states  map[string]string
}

func (f *fakeChange) change(_ context.Context, t Target) Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, t.Context)
	st := f.states[t.Context]
	if st == "" {
		st = Done
	}
	return Outcome{State: st}
}

func targets(names ...string) []Target {
	var out []Target
	for _, n := range names {
		out = append(out, Target{Context: "ctx/" + n + ":x", UID: "uid-" + n})
	}
	return out
}

func TestRunGoesWaveByWave(t *testing.T) {
	dir := t.TempDir()
	ix, _ := OpenIndex(dir, "invalidate")
	f := &fakeChange{}
	var starts [][]string
	res, err := Run(context.Background(), targets("a", "b", "c", "d"), Options{Growth: 2, Change: f.change, Index: ix, Dir: dir,
		OnWave: func(n int, ts []Target, start bool) {
			if start {
				var names []string
				for _, t := range ts {
					names = append(names, t.Context)
				}
				starts = append(starts, names)
			}
		}})
	if err != nil || res.Stopped != "" || res.Failed() {
		t.Fatalf("run: %v %+v", err, res)
	}
	if want := [][]string{{"ctx/a:x"}, {"ctx/b:x", "ctx/c:x"}, {"ctx/d:x"}}; !reflect.DeepEqual(starts, want) || !reflect.DeepEqual(res.Waves, want) {
		t.Errorf("waves %v (%v), want %v", starts, res.Waves, want)
	}
	got, err := ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got.Clusters {
		if e.State != StateDone || e.Folder != e.UID {
			t.Errorf("index entry %+v", e)
		}
	}
}

// The stop rule: a wave with a cluster that failed, saw a client, or
// could not be reached is the last; the later clusters are not changed.
func TestRunStopsAfterAWaveWithAClusterNotDone(t *testing.T) {
	for _, state := range []string{Failed, ClientSeen, Unreachable} {
		t.Run(state, func(t *testing.T) {
			dir := t.TempDir()
			ix, _ := OpenIndex(dir, "invalidate")
			f := &fakeChange{states: map[string]string{"ctx/b:x": state}}
			res, err := Run(context.Background(), targets("a", "b", "c", "d"), Options{Growth: 1, Change: f.change, Index: ix, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.changed, []string{"ctx/a:x", "ctx/b:x"}) {
				t.Errorf("changed %v, want a and b only", f.changed)
			}
			if res.Stopped == "" || !res.Failed() {
				t.Errorf("not stopped: %+v", res)
			}
			states := map[string]string{}
			for _, c := range res.Clusters {
				states[c.Context] = c.State
			}
			if want := map[string]string{"ctx/a:x": Done, "ctx/b:x": state, "ctx/c:x": NotRun, "ctx/d:x": NotRun}; !reflect.DeepEqual(states, want) {
				t.Errorf("states %v, want %v", states, want)
			}
		})
	}
}

// A target that could not be planned fails its wave without a change.
func TestRunUnreachableTargetStopsWithoutChange(t *testing.T) {
	dir := t.TempDir()
	ix, _ := OpenIndex(dir, "invalidate")
	f := &fakeChange{}
	ts := targets("a", "b", "c")
	ts[0] = Target{Context: "gone", Unreachable: "connection refused"}
	res, _ := Run(context.Background(), ts, Options{Growth: 2, Change: f.change, Index: ix, Dir: dir})
	if len(f.changed) != 0 || res.Stopped == "" {
		t.Fatalf("changed %v, stopped %q", f.changed, res.Stopped)
	}
}

// Resume: a rerun into the same folder skips the clusters done, finishes
// the started one (its change is called again) and goes on with the rest,
// its waves starting again at one cluster.
func TestRunResumesFromTheIndex(t *testing.T) {
	dir := t.TempDir()
	ix, _ := OpenIndex(dir, "invalidate")
	f := &fakeChange{states: map[string]string{"ctx/b:x": ClientSeen}}
	if _, err := Run(context.Background(), targets("a", "b", "c"), Options{Growth: 1, Change: f.change, Index: ix, Dir: dir}); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(dir, "invalidate")
	if err != nil {
		t.Fatal(err)
	}
	if e := ix.Entry("uid-b"); e == nil || e.State != StateStarted || e.Note == "" {
		t.Fatalf("b in the index: %+v", e)
	}
	f2 := &fakeChange{}
	res, err := Run(context.Background(), targets("a", "b", "c"), Options{Growth: 2, Change: f2.change, Index: ix, Dir: dir})
	if err != nil || res.Failed() {
		t.Fatalf("%v %+v", err, res)
	}
	if !reflect.DeepEqual(f2.changed, []string{"ctx/b:x", "ctx/c:x"}) && !reflect.DeepEqual(f2.changed, []string{"ctx/c:x", "ctx/b:x"}) {
		t.Errorf("rerun changed %v, want b and c", f2.changed)
	}
	if !reflect.DeepEqual(res.Waves, [][]string{{"ctx/b:x"}, {"ctx/c:x"}}) {
		t.Errorf("rerun waves %v", res.Waves)
	}
	if res.Clusters[0].State != Skipped {
		t.Errorf("a: %+v, want skipped", res.Clusters[0])
	}
}

func TestIndexFolderNamesAndSelection(t *testing.T) {
	dir := t.TempDir()
	ix, err := OpenIndex(dir, "invalidate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Add("../etc", "x", ""); err == nil {
		t.Error("a uid with a path in it named a folder")
	}
	if _, err := ix.Add("8d3c6a8e-5f1b-4c1e-9a7e-2b6f0d4c3a21", "arn:aws:eks:eu-west-1:1:cluster/prod", "https://a"); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, IndexFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("index mode %v", fi.Mode())
	}
	if !IsFleetFolder(dir) {
		t.Error("not a fleet folder")
	}
	back, err := ReadIndex(dir)
	if err != nil || len(back.Clusters) != 1 || back.Clusters[0].Folder != "8d3c6a8e-5f1b-4c1e-9a7e-2b6f0d4c3a21" {
		t.Fatalf("%v %+v", err, back)
	}
	if _, err := back.Select([]string{"nope"}); err == nil {
		t.Error("a context not in the index was selected")
	}
	if s, err := back.Select([]string{"arn:aws:eks:eu-west-1:1:cluster/prod"}); err != nil || len(s) != 1 {
		t.Errorf("select: %v %v", s, err)
	}
	if _, err := OpenIndex(dir, "delete"); err == nil {
		t.Error("an index of another mode was opened")
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "x"), nil, 0o600)
	if _, err := OpenIndex(other, "invalidate"); err == nil {
		t.Error("a folder with other files became a fleet folder")
	}
}

// The context-uid check: a context that reaches another cluster (or one
// whose uid cannot be read) is refused.
func TestCheckIdentity(t *testing.T) {
	e := Entry{UID: "uid-a"}
	if err := CheckIdentity(e, "a", "uid-a"); err != nil {
		t.Errorf("same cluster refused: %v", err)
	}
	for _, got := range []string{"uid-b", ""} {
		var ie *IdentityError
		if err := CheckIdentity(e, "a", got); !errors.As(err, &ie) {
			t.Errorf("reaching %q: %v", got, err)
		}
	}
}
