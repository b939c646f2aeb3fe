package cmd

import (
	"fmt"
	"io"
	"time"

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

// progress is a line that counts outcomes as they are done, with the
// rate so far and, when the total is known, the time left at that rate.
type progress struct {
	*line
	counts map[string]int
	// total is how many will be done (0: not known).
	total int
	start time.Time
	now   func() time.Time
	// last is when the line was last drawn: at most ten a second, so
	// that 100,000 outcomes are not 100,000 writes to the terminal.
	last time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{line: newLine(w), counts: map[string]int{}, now: time.Now}
}

// of sets the total.
func (p *progress) of(total int) *progress {
	p.total = total
	return p
}

func (p *progress) step(o backup.Outcome) {
	if !p.on {
		return
	}
	now := p.now()
	if p.start.IsZero() {
		p.start = now
	}
	p.counts[o.Result]++
	done := 0
	for _, n := range p.counts {
		done += n
	}
	if done != p.total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	p.show(p.text(done, now))
}

// text is the line after done outcomes: "1200/20000 done, 350/s, 48s
// left: 1200 invalidated".
func (p *progress) text(done int, now time.Time) string {
	s := fmt.Sprintf("%d done", done)
	if p.total > 0 {
		s = fmt.Sprintf("%d/%d done", done, p.total)
	}
	if el := now.Sub(p.start).Seconds(); !p.start.IsZero() && el >= 1 {
		rate := float64(done) / el
		s += fmt.Sprintf(", %.0f/s", rate)
		if p.total > done && rate > 0 {
			s += fmt.Sprintf(", %s left", (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second))
		}
	}
	return s + ": " + countsLine(p.counts)
}

// reset starts the count again, for the next wave.
func (p *progress) reset() {
	p.n, p.counts, p.start, p.last = 0, map[string]int{}, time.Time{}, time.Time{}
}
