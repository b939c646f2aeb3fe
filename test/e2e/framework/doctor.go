package framework

import (
	"encoding/json"
	"strings"
	"testing"
)

// This file reads `doctor -o json`, whose checks several suites judge one
// by one.

// DoctorCheck is one check of `doctor -o json`.
type DoctorCheck struct{ Name, Status, Message, Fix string }

// DoctorChecks reads the checks of a `doctor -o json` run by name; output
// that is not that JSON stops the test.
func (r Result) DoctorChecks(t testing.TB) map[string]DoctorCheck {
	t.Helper()
	var out struct{ Checks []DoctorCheck }
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("doctor -o json (exit %d): %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	m := map[string]DoctorCheck{}
	for _, c := range out.Checks {
		m[c.Name] = c
	}
	return m
}

// String is the check on one line: "status: message | fix: fix".
func (c DoctorCheck) String() string {
	return c.Status + ": " + c.Message + " | fix: " + c.Fix
}

// Must fails the test unless the check exists, has status, and its message
// contains each of in.
func (c DoctorCheck) Must(t testing.TB, status string, in ...string) {
	t.Helper()
	if c.Name == "" {
		t.Fatalf("no such check (want %s with %q)", status, in)
	}
	if c.Status != status {
		t.Errorf("%s is %s, want %s: %s | %s", c.Name, c.Status, status, c.Message, c.Fix)
	}
	for _, s := range in {
		if !strings.Contains(c.Message, s) {
			t.Errorf("%s does not say %q: %s", c.Name, s, c.Message)
		}
	}
}
