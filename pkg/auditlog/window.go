package auditlog

import (
	"bytes"
	"time"
)

// microLen is the length of kube-apiserver's timestamps: metav1.MicroTime
// marshals as t.UTC().Format(RFC3339Micro), "2006-01-02T15:04:05.000000Z"
// (k8s.io/apimachinery/pkg/apis/meta/v1/micro_time.go, MicroTime.MarshalJSON).
// Fixed width and always UTC, so byte order is time order and the window
// of millions of events needs no time parsing, only comparisons.
const microLen = len("2006-01-02T15:04:05.000000Z")

// windowAcc tracks the earliest and latest requestReceivedTimestamp of one
// Read.
type windowAcc struct {
	minS, maxS [microLen]byte
	haveS      bool
	// Timestamps in any other RFC 3339 form (a re-encoded log), parsed.
	from, to time.Time
}

// add folds ts in and reports whether it is a valid timestamp.
func (w *windowAcc) add(ts []byte) bool {
	if isMicroUTC(ts) {
		if !w.haveS {
			copy(w.minS[:], ts)
			copy(w.maxS[:], ts)
			w.haveS = true
			return true
		}
		if bytes.Compare(ts, w.minS[:]) < 0 {
			copy(w.minS[:], ts)
		}
		if bytes.Compare(ts, w.maxS[:]) > 0 {
			copy(w.maxS[:], ts)
		}
		return true
	}
	t, ok := parseTime(ts)
	if !ok {
		return false
	}
	w.fold(t)
	return true
}

func (w *windowAcc) fold(t time.Time) {
	if w.from.IsZero() || t.Before(w.from) {
		w.from = t
	}
	if w.to.IsZero() || t.After(w.to) {
		w.to = t
	}
}

func (w *windowAcc) mergeInto(win *Window) {
	if w.haveS {
		// isMicroUTC let only valid dates in, so these parse.
		if t, ok := parseTime(w.minS[:]); ok {
			w.fold(t)
		}
		if t, ok := parseTime(w.maxS[:]); ok {
			w.fold(t)
		}
	}
	if w.from.IsZero() {
		return
	}
	if win.From.IsZero() || w.from.Before(win.From) {
		win.From = w.from
	}
	if win.To.IsZero() || w.to.After(win.To) {
		win.To = w.to
	}
}

func parseTime(ts []byte) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// isMicroUTC reports whether ts is exactly "YYYY-MM-DDTHH:MM:SS.ffffffZ"
// with a date and time time.Parse accepts (so the window's ends parse).
func isMicroUTC(ts []byte) bool {
	if len(ts) != microLen || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' ||
		ts[16] != ':' || ts[19] != '.' || ts[26] != 'Z' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25} {
		if ts[i] < '0' || ts[i] > '9' {
			return false
		}
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range ts[i : i+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		num(11, 2) > 23 || num(14, 2) > 59 || num(17, 2) > 59 {
		return false
	}
	return true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
