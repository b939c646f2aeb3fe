package jwt

import (
	"fmt"
	"time"
)

// RelativeTime says when t is relative to now, in the coarse words people
// read at a glance: "in 59m", "3h12m ago", "in 2d4h", "just now".
func RelativeTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if d < 0 {
		d = -d
	}
	if d < 5*time.Second {
		return "just now"
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h := int(d.Hours())
		m := int(d.Minutes()) - 60*h
		if m == 0 {
			s = fmt.Sprintf("%dh", h)
		} else {
			s = fmt.Sprintf("%dh%dm", h, m)
		}
	case d < 365*24*time.Hour:
		days := int(d.Hours()) / 24
		h := int(d.Hours()) - 24*days
		if h == 0 {
			s = fmt.Sprintf("%dd", days)
		} else {
			s = fmt.Sprintf("%dd%dh", days, h)
		}
	default:
		y := int(d.Hours()) / (24 * 365)
		days := (int(d.Hours()) - y*24*365) / 24
		s = fmt.Sprintf("%dy%dd", y, days)
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}
