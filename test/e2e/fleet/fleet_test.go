package fleet

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var dataOnce sync.Once

// data puts, in every cluster X and every namespace fleet-Y, one legacy
// token Secret named X-in-fleet-Y: a section that shows another
// cluster's data, or another namespace's, names it.
func data(t *testing.T) {
	dataOnce.Do(func() {
		for _, x := range names {
			for _, y := range names {
				ns := "fleet-" + y
				ensureNamespace(t, clusters[x], ns)
				clusters[x].CreateLegacySecret(t, ns, "app", x+"-in-"+ns, true)
			}
		}
	})
}

type report struct {
	Kind, APIVersion, Command string
	Clusters                  []section
	Summary                   struct {
		Clusters, Contexts, Checked int
		Verdicts                    map[string]int
		FailedClusters              []string
	}
}

type section struct {
	Context, Server, KubernetesVersion, Namespace string
	Aliases                                       []string
	Reason, Error                                 string
	Result                                        json.RawMessage
}

func parse(t *testing.T, r framework.Result) *report {
	t.Helper()
	var doc report
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\nstdout: %s\nstderr: %s", err, r.Stdout, r.Stderr)
	}
	return &doc
}

func (r *report) section(t *testing.T, context string) section {
	t.Helper()
	for _, s := range r.Clusters {
		if s.Context == context {
			return s
		}
	}
	t.Fatalf("no section for context %s", context)
	return section{}
}

func (r *report) contexts() []string {
	var out []string
	for _, s := range r.Clusters {
		out = append(out, s.Context)
	}
	return out
}

// secretNames are the Secrets of a migrate section's result.
func (s section) secretNames(t *testing.T) []string {
	t.Helper()
	var audit struct {
		Kind  string
		Items []struct{ Namespace, Name string }
	}
	if err := json.Unmarshal(s.Result, &audit); err != nil || audit.Kind != "LegacyTokenAudit" {
		t.Fatalf("context %s: result is not an audit (%v): %s", s.Context, err, s.Result)
	}
	var out []string
	for _, it := range audit.Items {
		out = append(out, it.Name)
	}
	sort.Strings(out)
	return out
}

// The run: three clusters, each with its own Secrets, one of them
// also reached through a second context (an alias, through a proxy); a
// context at a closed port and one whose credentials are refused.
func TestOneRunReportsEveryClusterWithItsOwnData(t *testing.T) {
	data(t)
	var mu sync.Mutex
	var viaAlias []string
	alias, err := faultproxy.Start(clusters["one"], faultproxy.Config{Script: func(r *http.Request) faultproxy.Fault {
		mu.Lock()
		defer mu.Unlock()
		viaAlias = append(viaAlias, r.Method+" "+r.URL.Path)
		return faultproxy.NoFault
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer alias.Close()
	ctxs := map[string]entry{}
	for _, n := range names {
		ctxs[n] = direct(t, clusters[n], "fleet-"+n)
	}
	viaProxy := direct(t, clusters["one"], "fleet-two")
	viaProxy.server, viaProxy.caData = alias.URL, alias.RESTConfig().CAData
	ctxs["one-via-proxy"] = viaProxy
	closed := direct(t, clusters["one"], "fleet-one")
	closed.server = closedPort(t)
	ctxs["closed"] = closed
	refused := direct(t, clusters["two"], "fleet-two")
	refused.user = &clientcmdapi.AuthInfo{Token: "not-a-token-this-cluster-knows"}
	ctxs["refused"] = refused
	kc := writeKubeconfig(t, ctxs)

	r := run(t, kc, "migrate", "--all-contexts", "-o", "json")
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	doc := parse(t, r)
	if doc.Kind != "FleetReport" || doc.APIVersion != "bound-token.kubectl.io/v1alpha1" || doc.Command != "migrate" {
		t.Errorf("document %s %s %s", doc.APIVersion, doc.Kind, doc.Command)
	}
	// Run order is the contexts' sorted names; the alias has no section.
	if got, want := doc.contexts(), []string{"closed", "one", "refused", "three", "two"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sections %v, want %v", got, want)
	}
	for _, n := range names {
		s := doc.section(t, n)
		if got, want := s.secretNames(t), []string{n + "-in-fleet-" + n}; !reflect.DeepEqual(got, want) {
			t.Errorf("context %s reports %v, want %v (its own cluster, its own namespace)", n, got, want)
		}
		if s.Server != clusters[n].Server || s.Namespace != "fleet-"+n || !strings.HasPrefix(s.KubernetesVersion, "v1.") || s.Error != "" {
			t.Errorf("context %s: section %+v", n, s)
		}
	}
	if got := doc.section(t, "one").Aliases; !reflect.DeepEqual(got, []string{"one-via-proxy"}) {
		t.Errorf("aliases of one: %v, want [one-via-proxy]", got)
	}
	mu.Lock()
	for _, req := range viaAlias {
		if strings.Contains(req, "secrets") || strings.Contains(req, "serviceaccounts") {
			t.Errorf("the alias was run: %s went through it", req)
		}
	}
	mu.Unlock()
	if s := doc.section(t, "closed"); s.Reason != "Unreachable" || !strings.Contains(s.Error, "connection refused") {
		t.Errorf("closed: %+v", s)
	}
	if s := doc.section(t, "refused"); s.Reason != "Unauthorized" {
		t.Errorf("refused: %+v", s)
	}
	sum := doc.Summary
	if !reflect.DeepEqual(sum.FailedClusters, []string{"closed", "refused"}) || sum.Clusters != 5 || sum.Contexts != 6 || sum.Checked != 3 {
		t.Errorf("summary %+v", sum)
	}
	total := 0
	for _, n := range sum.Verdicts {
		total += n
	}
	if total != 3 {
		t.Errorf("summary counts %d Secrets by verdict (%v), want 3", total, sum.Verdicts)
	}
	for _, want := range []string{"error: context closed ", "error: context refused ", "context one-via-proxy: the same cluster as one"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}

	// The table: a CONTEXT column, each row its own cluster's.
	r = run(t, kc, "migrate", "--contexts", "one,two,three")
	if r.Code != 0 {
		t.Fatalf("table: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if !strings.HasPrefix(lines[0], "CONTEXT ") || len(lines) != 4 {
		t.Fatalf("table:\n%s", r.Stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if f[2] != f[0]+"-in-"+f[1] {
			t.Errorf("row of another cluster or namespace: %s", l)
		}
	}

	// -n applies in every context.
	doc = parse(t, run(t, kc, "migrate", "--contexts", "one,two", "-n", "fleet-three", "-o", "json"))
	for _, n := range []string{"one", "two"} {
		if got := doc.section(t, n).secretNames(t); !reflect.DeepEqual(got, []string{n + "-in-fleet-three"}) {
			t.Errorf("-n fleet-three, context %s: %v", n, got)
		}
	}

	// -A applies in every context: each cluster's Secrets of every
	// namespace, and no section names a namespace.
	doc = parse(t, run(t, kc, "migrate", "--contexts", "one,two", "-A", "-o", "json"))
	for _, n := range []string{"one", "two"} {
		s := doc.section(t, n)
		mine := 0
		for _, got := range s.secretNames(t) {
			if strings.HasPrefix(got, n+"-in-fleet-") {
				mine++
			} else if strings.Contains(got, "-in-fleet-") {
				t.Errorf("-A, context %s: another cluster's Secret %s", n, got)
			}
		}
		if s.Namespace != "" || mine != len(names) {
			t.Errorf("-A, context %s: namespace %q, %d of its %d Secrets; want no namespace and all", n, s.Namespace, mine, len(names))
		}
	}

	// --as applies in every context, on top of its credentials: a user
	// with no RBAC is forbidden in each, so nothing is checked (exit 2).
	r = run(t, kc, "migrate", "--contexts", "one,two", "--as", "fleet-nobody", "-o", "json")
	doc = parse(t, r)
	if r.Code != 2 || doc.section(t, "one").Reason != "Forbidden" || doc.section(t, "two").Reason != "Forbidden" {
		t.Errorf("--as fleet-nobody: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}

	// doctor and switch's plan over the same fleet: a section each, the
	// closed port named.
	for _, c := range []string{"doctor", "switch"} {
		r := run(t, kc, c, "--contexts", "one,two,closed", "-o", "json")
		doc := parse(t, r)
		if r.Code != 1 || doc.Command != c || !reflect.DeepEqual(doc.contexts(), []string{"one", "two", "closed"}) ||
			doc.section(t, "closed").Reason != "Unreachable" || len(doc.section(t, "one").Result) == 0 {
			t.Errorf("%s: exit %d\n%s\n%s", c, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// A cluster behind a proxy that never answers ends with its own timeout;
// the others report their results.
func TestAClusterThatNeverAnswersTimesOutAlone(t *testing.T) {
	data(t)
	hang, err := faultproxy.Start(clusters["three"], faultproxy.Config{SlowDelay: time.Hour,
		Script: func(*http.Request) faultproxy.Fault { return faultproxy.Slow }})
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	ctxs := map[string]entry{"one": direct(t, clusters["one"], "fleet-one"), "two": direct(t, clusters["two"], "fleet-two")}
	hangs := direct(t, clusters["three"], "fleet-three")
	hangs.server, hangs.caData = hang.URL, hang.RESTConfig().CAData
	ctxs["hangs"] = hangs
	kc := writeKubeconfig(t, ctxs)

	r := run(t, kc, "migrate", "--all-contexts", "--context-timeout", "5s", "-o", "json")
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	doc := parse(t, r)
	if s := doc.section(t, "hangs"); s.Reason != "Timeout" || !strings.Contains(s.Error, "context timeout (5s)") {
		t.Errorf("hangs: %+v", s)
	}
	for _, n := range []string{"one", "two"} {
		if got := doc.section(t, n).secretNames(t); !reflect.DeepEqual(got, []string{n + "-in-fleet-" + n}) {
			t.Errorf("context %s: %v", n, got)
		}
	}
	if !reflect.DeepEqual(doc.Summary.FailedClusters, []string{"hangs"}) {
		t.Errorf("failed clusters %v", doc.Summary.FailedClusters)
	}
	if hang.Stats().Requests == 0 {
		t.Errorf("nothing reached the hanging proxy")
	}
}
