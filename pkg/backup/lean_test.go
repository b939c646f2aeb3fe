package backup

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

// journal appends, from the from-th, as migrate --apply does, a backup and a done record for
// n Secrets in n/10 namespaces, without writing their files (the index is
// what this measures).
func journal(t testing.TB, b *Folder, from, n int) {
	for i := from; i < from+n; i++ {
		ns, name := fmt.Sprintf("ns-%05d", i/10), fmt.Sprintf("token-%06d", i)
		rv := fmt.Sprint(100000 + i)
		if err := b.Note(Record{Op: OpBackup, Kind: "Secret", Namespace: ns, Name: name, UID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
			ResourceVersion: rv, File: backupPath("Secret", "", ns, name, rv), SHA256: fmt.Sprintf("%064x", i)}); err != nil {
			t.Fatal(err)
		}
		if err := b.Note(Record{Op: OpDone, Kind: "Secret", Namespace: ns, Name: name, Result: "invalidated"}); err != nil {
			t.Fatal(err)
		}
	}
}

// A lean folder keeps, per Secret done in this run, its result and not its
// backup record; an entry from an earlier run, and one not done yet, keep
// theirs.
func TestLeanFolderForgetsTheBackupOfWhatIsDone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeInvalidate, "2026-12-07")
	if err != nil {
		t.Fatal(err)
	}
	journal(t, b, 0, 2) // an earlier run's
	b.Close()
	if b, err = Open(dir, ModeInvalidate, "2026-12-07"); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Lean()
	if err := b.Note(Record{Op: OpBackup, Kind: "Secret", Namespace: "a", Name: "pending", UID: "u", ResourceVersion: "1", File: backupPath("Secret", "", "a", "pending", "1"), SHA256: fmt.Sprintf("%064x", 1)}); err != nil {
		t.Fatal(err)
	}
	journal(t, b, 2, 30)
	if e := b.Entry("Secret", "ns-00000", "token-000000"); e == nil || e.Backup == nil || !e.Results.Has("invalidated") {
		t.Errorf("an earlier run's entry lost its backup record: %+v", e)
	}
	if e := b.Entry("Secret", "a", "pending"); e == nil || e.Backup == nil {
		t.Errorf("a Secret backed up and not done lost its backup record: %+v", e)
	}
	if e := b.Entry("Secret", "ns-00002", "token-000025"); e == nil || e.Backup != nil || !e.Results.Has("invalidated") {
		t.Errorf("a Secret done in this run: %+v, want its result and no backup record", e)
	}
	// The journal still holds every record.
	b.Close()
	ix, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e := ix.Index.Lookup("Secret", "ns-00002", "token-000025"); e == nil || e.Backup == nil {
		t.Errorf("the journal lost the backup record of a Secret done in a lean run: %+v", e)
	}
}

// BenchmarkIndexMemory reports the heap an index keeps per Secret: lean
// (migrate --apply's own run), and replayed (restore, a resumed run).
func BenchmarkIndexMemory(b *testing.B) {
	for _, n := range []int{20000, 100000} {
		for _, lean := range []bool{true, false} {
			b.Run(fmt.Sprintf("secrets=%d/lean=%v", n, lean), func(b *testing.B) {
				for b.Loop() {
					dir := filepath.Join(b.TempDir(), "b")
					before := heap()
					f, err := Open(dir, ModeInvalidate, "2026-12-07")
					if err != nil {
						b.Fatal(err)
					}
					if lean {
						f.Lean()
					}
					journal(b, f, 0, n)
					after := heap()
					b.ReportMetric(float64(after-before)/float64(n), "B/Secret")
					f.Close()
					runtime.KeepAlive(f)
				}
			})
		}
	}
}

func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
