package text

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"a\nb\r\n  c ", 0, "a b c"},
		{"abcdef", 3, "abc..."},
		{"abc", 3, "abc"},
		{"aé", 2, "a..."}, // never cuts inside a rune
	} {
		if got := OneLine(tc.in, tc.max); got != tc.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	if Plural(1) != "" || Plural(0) != "s" || Plural(2) != "s" {
		t.Fatal("Plural")
	}
}

func TestKubectlFollowsKUBECTL_PATH(t *testing.T) {
	dir := t.TempDir()
	oc := filepath.Join(dir, "oc")
	other := filepath.Join(dir, "kubectl-1.37")
	for _, f := range []string{oc, other} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	onPath := func(name string) (string, error) {
		if name == "oc" {
			return oc, nil
		}
		return "", exec.ErrNotFound
	}
	for _, tc := range []struct{ env, want string }{
		{"", "kubectl"}, // run directly, or by kubectl before 1.37
		{oc, "oc"},      // PATH finds that very binary: its name
		{other, other},  // not on PATH: the whole path
		{filepath.Join(dir, "nope", "oc"), filepath.Join(dir, "nope", "oc")}, // PATH's oc is another file
	} {
		if got := kubectlFrom(tc.env, onPath); got != tc.want {
			t.Errorf("KUBECTL_PATH=%q: %q, want %q", tc.env, got, tc.want)
		}
	}
	t.Setenv("KUBECTL_PATH", "")
	if got := Kubectl(); got != "kubectl" {
		t.Errorf("Kubectl() without KUBECTL_PATH = %q", got)
	}
}
