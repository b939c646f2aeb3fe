package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestDocsAreFresh fails when docs/reference no longer matches the command
// tree; `make docs` regenerates it.
func TestDocsAreFresh(t *testing.T) {
	t.Setenv("HOME", DocsHome)
	want, err := GenerateDocs()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "reference")
	have, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(got, want[n]) {
			t.Errorf("docs/reference/%s is stale or missing; run make docs", n)
		}
	}
	for _, f := range have {
		if _, ok := want[filepath.Base(f)]; !ok {
			t.Errorf("docs/reference/%s documents no command; run make docs", filepath.Base(f))
		}
	}
	if len(want) < 8 {
		t.Fatalf("only %d pages generated", len(want))
	}
}
