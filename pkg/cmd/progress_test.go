package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

// The progress line counts, and once a second has passed shows the rate
// and, with a total, the time left at that rate; it is drawn at most ten
// times a second, and always for the last outcome.
func TestProgressRateAndTimeLeft(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newProgress(&buf).of(1000)
	p.on = true
	p.now = func() time.Time { return now }
	for i := 0; i < 1000; i++ {
		p.step(backup.Outcome{Result: "invalidated"})
		now = now.Add(5 * time.Millisecond)
		if i == 399 {
			if got := p.text(400, now); got != "400/1000 done, 200/s, 3s left: 400 invalidated" {
				t.Errorf("at 400: %q", got)
			}
		}
	}
	out := buf.String()
	draws := strings.Count(out, "\r")
	if draws > 60 || draws < 40 {
		t.Errorf("%d draws for 1000 outcomes over 5 s", draws)
	}
	if !strings.HasSuffix(out, "1000/1000 done, 200/s: 1000 invalidated") {
		t.Errorf("last line %q", out[strings.LastIndex(out, "\r"):])
	}
	p = newProgress(&buf)
	if got := p.text(3, p.now()); got != "3 done: nothing selected" {
		t.Errorf("without total: %q", got)
	}
}
