package cmd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// completionServer answers metadata-only LISTs of the names in objects
// (path -> names), two pages for longer lists, and records every request.
func completionServer(t *testing.T, objects map[string][]string) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" continue="+r.URL.Query().Get("continue"))
		mu.Unlock()
		names, ok := objects[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadataList") {
			t.Errorf("%s: not a metadata-only LIST: Accept %q", r.URL.Path, r.Header.Get("Accept"))
		}
		list := map[string]any{"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": map[string]any{}}
		if half := len(names) / 2; len(names) > 2 && r.URL.Query().Get("continue") == "" {
			names = names[:half]
			list["metadata"] = map[string]any{"continue": "page2"}
		} else if len(names) > 2 {
			names = names[half:]
		}
		var items []any
		for _, n := range names {
			items = append(items, map[string]any{"metadata": map[string]any{"name": n}})
		}
		list["items"] = items
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// completions runs `__complete ARGS` and returns the offered words and the
// directive line.
func completions(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	out, errOut, code := run(t, cmdRun{}, "", append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d\n%s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// Completion of names from the cluster and from the kubeconfig: what
// kubectl's completion package offered, from our own helpers.
func TestCompletesNamesFromClusterAndKubeconfig(t *testing.T) {
	srv, requests := completionServer(t, map[string][]string{
		"/api/v1/namespaces":                                                       {"default", "dev", "kube-system"},
		"/api/v1/namespaces/team/serviceaccounts":                                  {"builder", "bot", "default", "deployer"},
		"/api/v1/namespaces/other/serviceaccounts":                                 {"other-sa"},
		"/api/v1/namespaces/team/secrets":                                          {"bot-token", "builder-token", "tls"},
		"/apis/hypershift.openshift.io/v1beta1/namespaces/clusters/hostedclusters": {"prod", "staging"},
	})
	kc := "apiVersion: v1\nkind: Config\ncurrent-context: main\n" +
		"clusters:\n- {name: main-cluster, cluster: {server: " + srv.URL + "}}\n- {name: dr-cluster, cluster: {server: " + srv.URL + "}}\n" +
		"users:\n- {name: admin, user: {token: t}}\n- {name: auditor, user: {token: t}}\n" +
		"contexts:\n- {name: main, context: {cluster: main-cluster, user: admin, namespace: team}}\n" +
		"- {name: dr, context: {cluster: dr-cluster, user: auditor}}\n- {name: mgmt, context: {cluster: main-cluster, user: admin}}\n"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	const noFiles = ":4"
	for _, c := range []struct {
		args []string
		want string
	}{
		// ServiceAccounts of the kubeconfig's namespace, every page, by prefix.
		{[]string{"create", "b"}, "builder bot"},
		{[]string{"create", ""}, "builder bot default deployer"},
		// -n picks the namespace, as it does for the command.
		{[]string{"-n", "other", "create", ""}, "other-sa"},
		// Only the first argument, as kubectl's ResourceNameCompletionFunc.
		{[]string{"create", "builder", ""}, ""},
		{[]string{"decode", "--from-secret", "b"}, "bot-token builder-token"},
		{[]string{"verify", "--from-secret", "t"}, "tls"},
		{[]string{"--namespace", "d"}, "default dev"},
		{[]string{"rotate", "--restart-namespace", "k"}, "kube-system"},
		{[]string{"-n", "clusters", "rotate", "--hosted-cluster", ""}, "prod staging"},
		{[]string{"-n", "clusters", "rotate", "hosted-cluster", ""}, "prod staging"},
		{[]string{"rotate", "issuer", "https://x", "--restart-namespace", "k"}, "kube-system"},
		// The kubeconfig's sections, sorted.
		{[]string{"--context", ""}, "dr main mgmt"},
		{[]string{"--context", "m"}, "main mgmt"},
		{[]string{"--cluster", ""}, "dr-cluster main-cluster"},
		{[]string{"--user", "a"}, "admin auditor"},
	} {
		got, directive := completions(t, append([]string{"--kubeconfig", path}, c.args...)...)
		if strings.Join(got, " ") != c.want || directive != noFiles {
			t.Errorf("__complete %v: got %q %s, want %q %s", c.args, got, directive, c.want, noFiles)
		}
	}
	if got := strings.Join(requests(), "\n"); !strings.Contains(got, "/api/v1/namespaces/team/serviceaccounts continue=page2") {
		t.Errorf("the second page was never asked for:\n%s", got)
	}
	// An unreachable cluster offers nothing and still exits 0.
	if got, directive := completions(t, "--kubeconfig", filepath.Join(t.TempDir(), "none"), "-s", "http://127.0.0.1:1", "create", ""); len(got) != 0 || directive != noFiles {
		t.Errorf("unreachable: %q %s", got, directive)
	}
}
