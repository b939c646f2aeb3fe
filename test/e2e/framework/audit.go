package framework

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// This file reads kube-apiserver's audit log (Options.Audit) for the
// suites that check which requests the plugin made, and how often.

// AuditRequest is one request of the audit log, as the suites read it.
type AuditRequest struct {
	AuditID, Verb, UserAgent, RequestURI string
	Received                             time.Time
	// Resource and Namespace are of the request's objectRef.
	Resource, Namespace string
}

// OwnRequests reads the audit log: the requests on an object (with an
// objectRef) that this test binary made (client-go's default user agent
// starts with the program's name; simulations and controllers have their
// own) received between start and end, each once (the log has a line for
// each stage of a request).
func (c *Cluster) OwnRequests(t testing.TB, start, end time.Time) []AuditRequest {
	t.Helper()
	f, err := os.Open(c.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []AuditRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			AuditID    string    `json:"auditID"`
			Verb       string    `json:"verb"`
			UserAgent  string    `json:"userAgent"`
			RequestURI string    `json:"requestURI"`
			Received   time.Time `json:"requestReceivedTimestamp"`
			ObjectRef  *struct {
				Resource  string `json:"resource"`
				Namespace string `json:"namespace"`
			} `json:"objectRef"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.ObjectRef == nil || seen[ev.AuditID] {
			continue
		}
		seen[ev.AuditID] = true
		if !strings.HasPrefix(ev.UserAgent, filepath.Base(os.Args[0])+"/") || ev.Received.Before(start) || ev.Received.After(end) {
			continue
		}
		out = append(out, AuditRequest{AuditID: ev.AuditID, Verb: ev.Verb, UserAgent: ev.UserAgent, RequestURI: ev.RequestURI,
			Received: ev.Received, Resource: ev.ObjectRef.Resource, Namespace: ev.ObjectRef.Namespace})
	}
	return out
}
