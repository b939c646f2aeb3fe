package cmd

import (
	"io"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether w is an interactive terminal. Bare tokens get a
// trailing newline only there, like `kubectl create token`, so that
// $(kubectl bound-token create sa) stays byte-exact; progress goes to stderr
// only there, so logs stay clean.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
