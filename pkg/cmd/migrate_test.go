package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackupFolderCompletion(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, d := range []string{"bound-token-backup-1", "bound-token-backup-2", "other"} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bound-token-backup-1", "other"} {
		if err := os.WriteFile(filepath.Join(d, "index.jsonl"), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"__complete", "restore", "--from", ""},
		{"__complete", "migrate", "--apply", "--backup-dir", ""},
	} {
		out, _, code := runCmd(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := strings.Join(lines[:len(lines)-1], " ")
		if got != "bound-token-backup-1 other" {
			t.Errorf("%v completes %q, want the folders holding an index", args, got)
		}
	}
	// No backup under the prefix: fall back to folder completion.
	out, _, _ := runCmd(t, "", "__complete", "restore", "--from", "zz")
	if !strings.HasSuffix(strings.TrimSpace(out), ":16") {
		t.Errorf("want the filter-folders directive (:16), got %q", out)
	}
}

func TestMigrateRefusesBadFlagsBeforeTouchingAnything(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--mode", "wipe"}, `--mode "wipe"`},
		{[]string{"migrate", "--dry-run=server"}, "only make sense with --apply"},
		{[]string{"migrate", "--apply", "--dry-run=server", "--backup-dir", "x"}, "writes no backup"},
		{[]string{"migrate", "--unused-for", "ninety"}, "--unused-for"},
		{[]string{"migrate", "-o", "wide"}, `--output "wide"`},
		{[]string{"restore"}, "--from DIR is required"},
		{[]string{"restore", "--from", "x", "--dry-run=maybe"}, `--dry-run "maybe"`},
	} {
		_, stderr, code := runCmd(t, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
}
