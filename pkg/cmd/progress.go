package cmd

import (
	"fmt"
	"io"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

// progress draws a one-line counter on stderr, only on a terminal.
type progress struct {
	w      io.Writer
	on     bool
	n      int
	counts map[string]int
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, on: isTerminal(w), counts: map[string]int{}}
}

func (p *progress) step(o backup.Outcome) {
	if !p.on {
		return
	}
	p.n++
	p.counts[o.Result]++
	fmt.Fprintf(p.w, "\r\033[K%d done: %s", p.n, countsLine(p.counts))
}

func (p *progress) end() {
	if p.on && p.n > 0 {
		fmt.Fprintln(p.w)
	}
}
