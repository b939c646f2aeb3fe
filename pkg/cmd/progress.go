package cmd

import (
	"fmt"
	"io"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

// line draws one changing line on stderr, only on a terminal.
type line struct {
	w  io.Writer
	on bool
	n  int
}

func newLine(w io.Writer) *line { return &line{w: w, on: isTerminal(w)} }

func (l *line) show(s string) {
	if l.on {
		l.n++
		fmt.Fprintf(l.w, "\r\033[K%s", s)
	}
}

func (l *line) end() {
	if l.on && l.n > 0 {
		fmt.Fprintln(l.w)
	}
}

// progress is a line that counts outcomes as they are done.
type progress struct {
	*line
	counts map[string]int
}

func newProgress(w io.Writer) *progress {
	return &progress{line: newLine(w), counts: map[string]int{}}
}

func (p *progress) step(o backup.Outcome) {
	if !p.on {
		return
	}
	p.counts[o.Result]++
	p.show(fmt.Sprintf("%d done: %s", p.n+1, countsLine(p.counts)))
}

// reset starts the count again, for the next wave.
func (p *progress) reset() { p.n, p.counts = 0, map[string]int{} }
