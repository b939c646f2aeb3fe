package framework

import (
	"os"
	"path/filepath"
	"testing"
)

// This file checks the backup folders that migrate and switch write.

// AssertPrivate fails the test for each folder under dir (itself
// included) that is not 0700 and each file that is not 0600.
func AssertPrivate(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
