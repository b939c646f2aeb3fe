package cmd

import (
	"net/http"
	"strings"
	"testing"
)

// doctor reports the kubectl that launched it from the process's own
// KUBECTL_PATH, as kubectl 1.37 sets it for a plugin.
func TestDoctorReportsTheLaunchingKubectl(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	})
	for _, tc := range []struct{ env, want string }{
		{"/opt/kubectl-1.37/kubectl", "kube-apiserver v1.37.2 (/version); launched by kubectl /opt/kubectl-1.37/kubectl"},
		{"", "no KUBECTL_PATH: run directly or by a kubectl older than 1.37"},
	} {
		t.Setenv("KUBECTL_PATH", tc.env)
		out, errOut, code := run(t, cmdRun{cmd: NewCmdDoctor, f: newAPITestFactory(t, "app", nil, api)}, "", "doctor")
		if code != ExitFailed { // no TokenRequest on this server
			t.Fatalf("exit %d, want %d\n%s%s", code, ExitFailed, out, errOut)
		}
		var release string
		for _, l := range lines(out) {
			if f := strings.Fields(l); len(f) > 1 && f[1] == "release" {
				release = l
			}
		}
		if !strings.Contains(release, tc.want) {
			t.Errorf("KUBECTL_PATH=%q: release line %q, want %q\n%s", tc.env, release, tc.want, out)
		}
	}
}
