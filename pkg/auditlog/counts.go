package auditlog

import (
	"encoding/json"
	"sort"
	"unicode/utf8"
)

const (
	// trackedValues bounds the distinct values one Counts keeps, so memory
	// follows the number of Secrets, not the log: a Secret's token used
	// from thousands of pod IPs keeps 16 of them.
	trackedValues = 16
	// maxValueBytes cuts long values (kube-apiserver keeps user agents up
	// to 1 KiB: k8s.io/apiserver/pkg/audit/request.go, maxUserAgentLength).
	maxValueBytes = 256
	// DefaultTop is how many values MarshalJSON shows.
	DefaultTop = 10
)

// Count is one value and the requests that had it.
type Count struct {
	Value    string `json:"value"`
	Requests int    `json:"requests"`
}

// Counts counts requests per value in bounded memory (the Space-Saving
// algorithm: when full, a new value replaces the least counted one and
// inherits its count). Exact while at most 16 distinct values were seen;
// beyond, any value with more than 1/16 of the requests is still kept and
// counts are upper bounds.
type Counts struct {
	entries []Count
	evicted bool
}

func (c *Counts) add(v string) {
	v = cut(v)
	for i := range c.entries {
		if c.entries[i].Value == v {
			c.entries[i].Requests++
			return
		}
	}
	if len(c.entries) < trackedValues {
		c.entries = append(c.entries, Count{Value: v, Requests: 1})
		return
	}
	m := 0
	for i := range c.entries {
		if c.entries[i].Requests < c.entries[m].Requests {
			m = i
		}
	}
	c.entries[m] = Count{Value: v, Requests: c.entries[m].Requests + 1}
	c.evicted = true
}

// cut shortens v to maxValueBytes at a rune boundary and marks the cut.
func cut(v string) string {
	if len(v) <= maxValueBytes {
		return v
	}
	n := maxValueBytes
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n] + "..."
}

// Top returns the n values with the most requests (ties by value), how many
// other values were seen, and whether counts are approximate; when they
// are, more is a lower bound.
func (c *Counts) Top(n int) (top []Count, more int, approx bool) {
	all := append([]Count(nil), c.entries...)
	sort.Slice(all, func(i, j int) bool {
		if all[i].Requests != all[j].Requests {
			return all[i].Requests > all[j].Requests
		}
		return all[i].Value < all[j].Value
	})
	if n < 0 {
		n = 0
	}
	if len(all) > n {
		return all[:n], len(all) - n, c.evicted
	}
	return all, 0, c.evicted
}

// MarshalJSON shows the DefaultTop values.
func (c Counts) MarshalJSON() ([]byte, error) {
	top, more, approx := c.Top(DefaultTop)
	if top == nil {
		top = []Count{}
	}
	return json.Marshal(struct {
		Top         []Count `json:"top"`
		More        int     `json:"more,omitempty"`
		Approximate bool    `json:"approximate,omitempty"`
	}{top, more, approx})
}
