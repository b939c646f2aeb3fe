package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// written is a closed folder holding one Secret's backup.
func written(t *testing.T) (string, *Record) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeInvalidate, "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Save(secret("ns", "s", "7"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, r
}

func TestInspectAcceptsAWrittenFolder(t *testing.T) {
	dir, r := written(t)
	f, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := f.Index.Lookup("Secret", "ns", "s")
	if f.Index.Mode != ModeInvalidate || f.Index.Date != "2026-11-23" || e == nil || e.Backup.SHA256 != r.SHA256 || e.Backup.File != r.File {
		t.Fatalf("index %+v", f.Index)
	}
	if err := f.Verify(e.Backup); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestInspectRefusesAGroupWritableFolder(t *testing.T) {
	for _, sub := range []string{"", "secrets", "secrets/ns"} {
		dir, _ := written(t)
		p := filepath.Join(dir, sub)
		if err := os.Chmod(p, 0o770); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("%q group-writable: %v", sub, err)
		}
		os.Chmod(p, 0o702)
		if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("%q others-writable: %v", sub, err)
		}
	}
}

func TestInspectRefusesASymlinkInside(t *testing.T) {
	dir, _ := written(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "secrets", "ns", "extra.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlink inside: %v", err)
	}
}

func TestInspectRefusesASymlinkedFolder(t *testing.T) {
	dir, _ := written(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(link); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked folder: %v", err)
	}
}

func TestInspectRefusesAMissingIndex(t *testing.T) {
	dir, _ := written(t)
	if err := os.Remove(filepath.Join(dir, IndexFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "holds no "+IndexFile) {
		t.Errorf("no index: %v", err)
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("no folder: %v", err)
	}
}

func TestInspectRefusesABadIndex(t *testing.T) {
	dir, _ := written(t)
	if err := os.WriteFile(filepath.Join(dir, IndexFile), []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(dir); err == nil {
		t.Error("bad index accepted")
	}
}

func TestInspectedFolderRefusesWrites(t *testing.T) {
	dir, _ := written(t)
	f, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	if err := f.Commit(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: "s", Result: "x"}); err == nil || !strings.Contains(err.Error(), "reading only") {
		t.Errorf("Commit: %v", err)
	}
	if err := f.Note(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: "s", Result: "x"}); err == nil {
		t.Error("Note accepted")
	}
	if _, err := f.Save(secret("ns", "t", "8")); err == nil {
		t.Error("Save accepted")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, IndexFile)); string(after) != string(before) {
		t.Errorf("index changed:\n%s", after)
	}
}

// TestReadChecksTheSum: a backup changed after it was written, or a file
// that holds another object, or a symlink in its place is refused.
func TestReadChecksTheSum(t *testing.T) {
	dir, r := written(t)
	f, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(r); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, r.File)
	data, _ := os.ReadFile(full)
	if err := os.WriteFile(full, []byte(strings.Replace(string(data), `"s"`, `"z"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(r); err == nil || !strings.Contains(err.Error(), "does not match the sha256") {
		t.Errorf("changed file: %v", err)
	}
	// Same bytes, other object: the sum matches but the identity does not.
	os.WriteFile(full, data, 0o600)
	other := *r
	other.Name = "t"
	if _, err := f.Read(&other); err == nil {
		t.Error("a file of another object accepted")
	}
	os.Remove(full)
	if _, err := f.Read(r); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	target := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(target, data, 0o600)
	os.Symlink(target, full)
	if _, err := f.Read(r); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked file: %v", err)
	}
}

// TestReadRefusesASymlinkedFolderOnTheWay: a folder of the path replaced
// by a symlink cannot point the read elsewhere, even with the right bytes.
func TestReadRefusesASymlinkedFolderOnTheWay(t *testing.T) {
	dir, r := written(t)
	elsewhere := filepath.Join(t.TempDir(), "ns")
	if err := os.Rename(filepath.Join(dir, "secrets", "ns"), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "secrets", "ns")); err != nil {
		t.Fatal(err)
	}
	f := &Folder{Dir: dir}
	if _, err := f.Read(r); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked folder on the way: %v", err)
	}
}

// TestSaveChecksWhatItWrote: the read-back check compares the file with
// the sum of what was meant to be written.
func TestSaveChecksWhatItWrote(t *testing.T) {
	dir, r := written(t)
	if err := checkSum(dir, r); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, r.File), []byte("{}\n"), 0o600)
	if err := checkSum(dir, r); err == nil {
		t.Error("checkSum accepted other bytes")
	}
}

// TestSaveReplacesACutFile: a file a killed run left half-written (not in
// the index) is replaced, and one with the wanted bytes is kept.
func TestSaveReplacesACutFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeInvalidate, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r0, data, _ := manifest(secret("ns", "s", "7"))
	full := filepath.Join(dir, r0.File)
	os.MkdirAll(filepath.Dir(full), 0o700)
	os.WriteFile(full, data[:10], 0o600)
	r, err := b.Save(secret("ns", "s", "7"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(r); err != nil {
		t.Errorf("cut file not replaced: %v", err)
	}
}

func TestParseIndexRefusesKindsAndFiles(t *testing.T) {
	head := `{"op":"begin","version":1,"mode":"switch"}` + "\n"
	sum := strings.Repeat("b", 64)
	rec := func(kind, file string) string {
		return head + `{"op":"backup","kind":"` + kind + `","namespace":"ns","name":"d","resourceVersion":"5","file":"` + file + `","sha256":"` + sum + `"}` + "\n"
	}
	if _, err := ParseIndex([]byte(rec("Deployment", "deployments/ns/d@5.json"))); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for name, in := range map[string]string{
		"lowercase kind":        rec("deployment", "deployments/ns/d@5.json"),
		"empty kind":            rec("", "s/ns/d@5.json"),
		"kind with a slash":     rec("Deploy/../..", "deploy/../..s/ns/d@5.json"),
		"kind with a dot":       rec("Deployment.apps", "deployment.appss/ns/d@5.json"),
		"file of another kind":  rec("Deployment", "statefulsets/ns/d@5.json"),
		"file of another rv":    rec("Deployment", "deployments/ns/d@6.json"),
		"file outside":          rec("Deployment", "/tmp/d@5.json"),
		"file in another ns":    rec("Deployment", "deployments/other/d@5.json"),
		"done of a bad kind":    head + `{"op":"done","kind":"x/y","namespace":"ns","name":"d","result":"r"}` + "\n",
		"done without name":     head + `{"op":"done","kind":"Secret","namespace":"ns","result":"r"}` + "\n",
		"settings without any":  head + `{"op":"settings"}` + "\n",
		"uppercase sha256":      strings.Replace(rec("Deployment", "deployments/ns/d@5.json"), sum, strings.Repeat("B", 64), 1),
		"sha256 not hex":        strings.Replace(rec("Deployment", "deployments/ns/d@5.json"), sum, strings.Repeat("g", 64), 1),
		"header twice is a bad": head + head,
	} {
		if _, err := ParseIndex([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseIndexReplaysTheJournal(t *testing.T) {
	sum := func(c string) string { return strings.Repeat(c, 64) }
	in := `{"op":"begin","version":1,"mode":"switch","date":"d"}` + "\n" +
		`{"op":"settings","settings":{"a":"1"}}` + "\n" +
		`{"op":"backup","kind":"Deployment","namespace":"ns","name":"x","resourceVersion":"1","file":"deployments/ns/x@1.json","sha256":"` + sum("a") + `"}` + "\n" +
		`{"op":"backup","kind":"Secret","namespace":"ns","name":"y","resourceVersion":"1","file":"secrets/ns/y@1.json","sha256":"` + sum("c") + `"}` + "\n" +
		`{"op":"done","kind":"Deployment","namespace":"ns","name":"x","result":"switched","template":"t1"}` + "\n" +
		`{"op":"backup","kind":"Deployment","namespace":"ns","name":"x","resourceVersion":"2","file":"deployments/ns/x@2.json","sha256":"` + sum("b") + `"}` + "\n" +
		`{"op":"settings","settings":{"a":"2"}}` + "\n" +
		`{"op":"done","kind":"Deployment","namespace":"ns","name":"x","result":"unchanged"}` + "\n"
	ix, err := ParseIndex([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	e := ix.Lookup("Deployment", "ns", "x")
	if e.Backup.ResourceVersion != "2" || e.Backup.SHA256 != sum("b") {
		t.Errorf("latest backup: %+v", e.Backup)
	}
	if !e.Results.Has("switched") || !e.Results.Has("unchanged") || e.Done.Result != "unchanged" {
		t.Errorf("results %v, done %+v", e.Results, e.Done)
	}
	if ix.Settings["a"] != "1" {
		t.Errorf("settings %v: the first record's count", ix.Settings)
	}
	if strings.Join(ix.Order, " ") != "Deployment/ns/x Secret/ns/y" || ix.Mode != ModeSwitch || ix.Date != "d" {
		t.Errorf("order %v, mode %q, date %q", ix.Order, ix.Mode, ix.Date)
	}
}

func TestUnfinished(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "b"), ModeDelete, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, n := range []string{"a", "b", "c"} {
		if _, err := b.Save(secret("ns", n, "1")); err != nil {
			t.Fatal(err)
		}
	}
	sa := &Record{}
	if r, err := b.Save(oldManifests()[1].obj); err != nil {
		t.Fatal(err)
	} else {
		sa = r
	}
	b.Commit(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: "a", Result: "deleted"})
	b.Commit(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: "b", Result: "failed"})
	b.Commit(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: "z", Result: "deleted"}) // done without backup
	var got []string
	for _, r := range b.Unfinished("Secret", "deleted", "skipped-gone") {
		got = append(got, r.Name)
	}
	if strings.Join(got, " ") != "b c" {
		t.Errorf("unfinished Secrets %v, want [b c]", got)
	}
	if u := b.Unfinished("ServiceAccount", "x"); len(u) != 1 || u[0].File != sa.File {
		t.Errorf("unfinished ServiceAccounts %v", u)
	}
	if u := b.Unfinished("Secret"); len(u) != 3 {
		t.Errorf("no finished results: %d unfinished, want every backup", len(u))
	}
}

func TestSettleKeepsTheFirstSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeSwitch, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Settle(map[string]string{"a": "1"}); err != nil || got["a"] != "1" {
		t.Fatalf("%v %v", got, err)
	}
	if got, _ := b.Settle(map[string]string{"a": "2"}); got["a"] != "1" {
		t.Errorf("second Settle returned %v", got)
	}
	b.Close()
	b, err = Open(dir, ModeSwitch, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := b.Settle(map[string]string{"a": "3"}); got["a"] != "1" {
		t.Errorf("after resume: %v", got)
	}
}

func TestOpenRefusesAForeignFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600)
	os.Chmod(dir, 0o700)
	var de *DirError
	if _, err := Open(dir, ModeSwitch, ""); err == nil || !asDirError(err, &de) {
		t.Errorf("folder without index: %v", err)
	}
	loose := t.TempDir()
	os.Chmod(loose, 0o777)
	if _, err := Open(loose, ModeSwitch, ""); err == nil {
		t.Error("world-writable folder accepted")
	}
}

func asDirError(err error, de **DirError) bool {
	d, ok := err.(*DirError)
	*de = d
	return ok
}
