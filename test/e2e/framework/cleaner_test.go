package framework

import (
	"strings"
	"testing"
)

// Lines as kube-controller-manager v1.34.4 wrote them at -v=6 while its
// legacy token cleaner ran against the local cluster.
func TestCleanerLogLinesAreRead(t *testing.T) {
	for _, c := range []struct {
		line, verb, url, status string
	}{
		{`I1202 00:00:04.954966    6697 round_trippers.go:632] "Response" logger="legacy-serviceaccount-token-cleaner-controller" verb="GET" url="https://127.0.0.1:38906/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking" status="200 OK" milliseconds=4`,
			"GET", "https://127.0.0.1:38906/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking", "200"},
		{`I1201 23:58:34.808148    4675 round_trippers.go:632] "Response" logger="legacy-serviceaccount-token-cleaner-controller" verb="PATCH" url="https://127.0.0.1:38906/api/v1/namespaces/cleaner-gm4fz/secrets/used-long-ago" status="200 OK" milliseconds=5`,
			"PATCH", "https://127.0.0.1:38906/api/v1/namespaces/cleaner-gm4fz/secrets/used-long-ago", "200"},
		{`I1201 23:58:34.717821    4675 round_trippers.go:632] "Response" verb="GET" url="https://127.0.0.1:38906/api/v1/secrets?allowWatchBookmarks=true&watch=true" status="200 OK" milliseconds=23`,
			"GET", "https://127.0.0.1:38906/api/v1/secrets?allowWatchBookmarks=true&watch=true", "200"},
		{`I1202 00:00:04.962666    6697 round_trippers.go:632] "Response" logger="x" verb="DELETE" url="https://h/api/v1/namespaces/a/secrets/b" status="" milliseconds=7`,
			"DELETE", "https://h/api/v1/namespaces/a/secrets/b", ""},
	} {
		m := responseLine.FindStringSubmatch(c.line)
		if m == nil || m[1] != c.verb || m[2] != c.url || m[3] != c.status {
			t.Errorf("%s\nread as %q", c.line, m)
		}
	}
	if s := secretURL.FindStringSubmatch("https://h/api/v1/namespaces/cleaner-gm4fz/secrets/used-long-ago"); s == nil || s[1] != "cleaner-gm4fz" || s[2] != "used-long-ago" {
		t.Errorf("secret URL read as %q", s)
	}
	if secretURL.MatchString("https://h/api/v1/namespaces/a/secrets/b/status") {
		t.Error("a subresource is not the Secret")
	}
	if !trackingRead.MatchString("https://h/api/v1/namespaces/kube-system/configmaps/"+TrackingConfigMap) ||
		trackingRead.MatchString("https://h/api/v1/namespaces/kube-system/configmaps?watch=true") {
		t.Error("the tracking ConfigMap read is not recognised exactly")
	}
	if !cacheSyncLine.MatchString(`I1202 00:00:04.949886    6697 shared_informer.go:356] "Caches are synced" controller="legacy-service-account-token-cleaner"`) {
		t.Error("caches-synced line not recognised")
	}
}

func TestCleanerDecisionsCountOnlyAnsweredWritesAfterTheGate(t *testing.T) {
	const h = `I1202 00:00:04.962666    6697 round_trippers.go:632] "Response" logger="legacy-serviceaccount-token-cleaner-controller" `
	lines := []string{
		// Before the evaluation's read of the tracking ConfigMap: not its.
		h + `verb="PATCH" url="https://h/api/v1/namespaces/a/secrets/early" status="200 OK" milliseconds=1`,
		h + `verb="GET" url="https://h/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking" status="200 OK" milliseconds=4`,
		h + `verb="PATCH" url="https://h/api/v1/namespaces/a/secrets/z" status="200 OK" milliseconds=5`,
		h + `verb="PATCH" url="https://h/api/v1/namespaces/a/secrets/b" status="200 OK" milliseconds=5`,
		h + `verb="DELETE" url="https://h/api/v1/namespaces/a/secrets/c" status="200 OK" milliseconds=5`,
		h + `verb="DELETE" url="https://h/api/v1/namespaces/a/secrets/gone" status="409 Conflict" milliseconds=5`,
		h + `verb="PATCH" url="https://h/api/v1/namespaces/a/secrets/cut" status="" milliseconds=5`,
		h + `verb="GET" url="https://h/api/v1/namespaces/a/secrets/read" status="200 OK" milliseconds=5`,
	}
	d := cleanerDecisions(lines)
	if got := strings.Join(d.invalidated, ","); got != "a/b,a/z" {
		t.Errorf("invalidated %s", got)
	}
	if got := strings.Join(d.deleted, ","); got != "a/c" {
		t.Errorf("deleted %s", got)
	}
	if len(d.ignored) != 1 || !strings.Contains(d.ignored[0], "a/gone") {
		t.Errorf("ignored %q", d.ignored)
	}
	if len(d.failed) != 1 || !strings.Contains(d.failed[0], "a/cut") {
		t.Errorf("failed %q", d.failed)
	}
}
