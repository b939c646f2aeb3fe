package cmd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// isTerminal reports whether a stream (stdin, stdout or stderr) is an
// interactive terminal. Bare tokens get a trailing newline only there, like
// `kubectl create token`, so that $(kubectl bound-token create sa) stays
// byte-exact; progress goes to stderr only there, so logs stay clean; a
// question is asked only when stdin is one.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirm asks a y/N question on errOut and reads the answer from in; only
// "y" or "yes" is a yes.
func confirm(in io.Reader, errOut io.Writer, question string) bool {
	fmt.Fprint(errOut, question+" [y/N] ")
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// confirmed is the answer to "Proceed?" of a command that changes the
// cluster: yes with --yes; without a terminal on stdin to ask on, refusal
// as a usage error (nothing changed); otherwise show says what is about
// to change and the user answers.
func confirmed(yes bool, in io.Reader, errOut io.Writer, refusal string, show func()) (bool, error) {
	if yes {
		return true, nil
	}
	if !isTerminal(in) {
		return false, usageErrorf("%s", refusal)
	}
	if show != nil {
		show()
	}
	return confirm(in, errOut, "Proceed?"), nil
}
