package kubeapi

import (
	"net/http"
	"testing"
	"time"
)

func TestServerClock(t *testing.T) {
	local := time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)
	c := &ServerClock{local: func() time.Time { return local }}
	if _, ok := c.Now(); ok {
		t.Fatal("a clock that saw no answer knows the time")
	}
	c.Observe("not a date")
	if _, ok := c.Now(); ok {
		t.Fatal("a malformed Date header set the clock")
	}
	// The server is two minutes ahead: past midnight, a day later.
	c.Observe(local.Add(2 * time.Minute).Format(http.TimeFormat))
	got, ok := c.Now()
	if !ok || got.UTC().Format("2006-01-02") != "2026-12-02" || got.Sub(local.Add(2*time.Minute)) != 500*time.Millisecond {
		t.Errorf("server time %v %v", got, ok)
	}
	local = local.Add(time.Hour)
	if got, _ := c.Now(); got.Sub(local.Add(2*time.Minute)) != 500*time.Millisecond {
		t.Errorf("the offset does not follow the local clock: %v", got)
	}
}
