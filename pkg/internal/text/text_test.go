package text

import "testing"

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
