package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func secret(ns, name, rv string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: rv,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{"token": []byte("secret-token-value")},
	}
}

func TestBackupSaveIsCleanPrivateAndChecked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeInvalidate, "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Save(secret("ns", "s", "42"))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	data, err := os.ReadFile(filepath.Join(dir, r.File))
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"uid-s", "resourceVersion", "managedFields"} {
		if strings.Contains(string(data), gone) {
			t.Errorf("backup manifest holds %s:\n%s", gone, data)
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, "secrets"), filepath.Join(dir, "secrets", "ns")} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %04o", p, fi.Mode().Perm())
		}
	}
	for _, p := range []string{filepath.Join(dir, r.File), filepath.Join(dir, IndexFile)} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o", p, fi.Mode().Perm())
		}
	}
	// The index names the original uid and resourceVersion.
	if r.UID != "uid-s" || r.ResourceVersion != "42" || len(r.SHA256) != 64 {
		t.Errorf("record %+v", r)
	}
	// Resume: same mode reopens with the record; another mode is refused.
	b2, err := Open(dir, ModeInvalidate, "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	if !b2.Resumed() || b2.Entry("Secret", "ns", "s").Backup.SHA256 != r.SHA256 || b2.Index.Date != "2026-11-23" {
		t.Errorf("resume lost the record or the date: %+v", b2.Index)
	}
	b2.Close()
	var de *DirError
	if _, err := Open(dir, ModeDelete, "2026-11-23"); !errors.As(err, &de) || de.Mode != ModeInvalidate || strings.Contains(err.Error(), "--") {
		t.Errorf("other mode: %v", err)
	}
}

func TestOpenBackupCutsAPartialLastLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeDelete, "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(secret("ns", "s", "7")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	idx := filepath.Join(dir, IndexFile)
	f, _ := os.OpenFile(idx, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"op":"done","kind":"Secret","names`) // killed mid-write
	f.Close()
	b, err = Open(dir, ModeDelete, "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: "s", Result: "deleted"}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	data, _ := os.ReadFile(idx)
	ix, err := ParseIndex(data)
	if err != nil {
		t.Fatalf("index unreadable after repair: %v\n%s", err, data)
	}
	if !ix.Lookup("Secret", "ns", "s").Results.Has("deleted") {
		t.Error("record after repair lost")
	}
}

func TestCommitIsConcurrentAndComplete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	b, err := Open(dir, ModeInvalidate, "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := b.Commit(Record{Op: OpDone, Kind: "Secret", Namespace: "ns", Name: fmt.Sprintf("s-%d", i), Result: "invalidated"}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	b.Close()
	data, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	ix, err := ParseIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Order) != 200 {
		t.Errorf("%d objects in the index, want 200", len(ix.Order))
	}
}

func TestParseIndexRejects(t *testing.T) {
	head := `{"op":"begin","version":1,"mode":"invalidate","date":"2026-11-23"}` + "\n"
	good := `{"op":"backup","kind":"Secret","namespace":"ns","name":"s","uid":"u","resourceVersion":"1","file":"secrets/ns/s@1.json","sha256":"` + strings.Repeat("a", 64) + `"}` + "\n"
	if _, err := ParseIndex([]byte(head + good)); err != nil {
		t.Fatalf("good index: %v", err)
	}
	for name, in := range map[string]string{
		"empty":          "",
		"no header":      good,
		"future version": `{"op":"begin","version":2,"mode":"invalidate"}` + "\n",
		"bad mode":       `{"op":"begin","version":1,"mode":"wipe"}` + "\n",
		"path escape":    head + strings.Replace(good, "secrets/ns/s@1.json", "../../etc/passwd", 1),
		"wrong path":     head + strings.Replace(good, "secrets/ns/s@1.json", "secrets/ns/other@1.json", 1),
		"bad name":       head + strings.Replace(strings.Replace(good, `"name":"s"`, `"name":"../s"`, 1), "s@1", "../s@1", 1),
		"short sha":      head + strings.Replace(good, strings.Repeat("a", 64), "abc", 1),
		"unknown field":  head + strings.Replace(good, `"op":"backup"`, `"op":"backup","x":1`, 1),
		"garbage line":   head + "not json\n" + good,
		"unknown op":     head + strings.Replace(good, `"op":"backup"`, `"op":"wipe"`, 1),
	} {
		if _, err := ParseIndex([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A cut last line is a killed write, not damage.
	if _, err := ParseIndex([]byte(head + good + `{"op":"do`)); err != nil {
		t.Errorf("partial last line: %v", err)
	}
}

func FuzzParseIndex(f *testing.F) {
	head := `{"op":"begin","version":1,"mode":"delete","date":"2026-11-23"}` + "\n"
	f.Add([]byte(head))
	f.Add([]byte(head + `{"op":"backup","kind":"ServiceAccount","namespace":"ns","name":"s","uid":"u","resourceVersion":"1","file":"serviceaccounts/ns/s@1.json","sha256":"` + strings.Repeat("0", 64) + `"}` + "\n"))
	f.Add([]byte(head + `{"op":"done","kind":"Secret","namespace":"ns","name":"s","result":"deleted"}` + "\n" + `{"op":"do`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			return
		}
		// Whatever parses must only name files inside the folder.
		for _, e := range ix.Entries {
			if e.Backup == nil {
				continue
			}
			clean := filepath.Clean(e.Backup.File)
			if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") || clean != e.Backup.File {
				t.Fatalf("index names a file outside the folder: %q", e.Backup.File)
			}
		}
	})
}
