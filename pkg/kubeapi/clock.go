package kubeapi

import (
	"net/http"
	"sync"
	"time"
)

// ServerClock follows the apiserver's clock through the Date header of its
// answers (every answer of Go's net/http server carries one). The day an
// invalidation writes, and whether a last-used label says "today", must be
// kube-apiserver's: it writes the label by its own UTC day
// (kubernetes pkg/serviceaccount/legacy.go, patchSecretWithLastUsedDate:
// time.Now().UTC()), whatever this machine's clock says.
type ServerClock struct {
	// local is this machine's clock; a test replaces it.
	local func() time.Time

	mu     sync.Mutex
	offset time.Duration // server minus local
	seen   bool
}

// NewServerClock returns a clock that knows nothing until it has seen an
// answer.
func NewServerClock() *ServerClock { return &ServerClock{local: time.Now} }

// Wrap is a rest.Config.Wrap function: every answer through the returned
// transport sets the clock.
func (c *ServerClock) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp != nil {
			c.Observe(resp.Header.Get("Date"))
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Observe reads one Date header value; one that does not parse is ignored.
func (c *ServerClock) Observe(date string) {
	if date == "" {
		return
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	// The header holds whole seconds, cut down: the server's time was
	// within the second after it, so its middle is the best guess.
	t = t.Add(500 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.seen = t.Sub(c.local()), true
}

// Now is the server's time now, by the last answer seen, and whether one
// was seen at all.
func (c *ServerClock) Now() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen {
		return time.Time{}, false
	}
	return c.local().Add(c.offset).UTC(), true
}
