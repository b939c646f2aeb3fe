package fleet

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/printers"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfig has one context per entry: context name -> server; the
// context's namespace is "ns-" + the context's name.
func kubeconfig(contexts map[string]string) *clientcmdapi.Config {
	c := clientcmdapi.NewConfig()
	for name, server := range contexts {
		c.Clusters[name] = &clientcmdapi.Cluster{Server: server}
		c.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "t-" + name}
		c.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "ns-" + name}
	}
	return c
}

// fakeCluster is a cluster with its own kube-system uid, version and one
// Secret per namespace named after the cluster.
func fakeCluster(name string, namespaces ...string) *fake.Clientset {
	objs := []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: types.UID("uid-" + name)}}}
	for _, ns := range namespaces {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secret-of-" + name}})
	}
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.34.0-" + name}
	return cs
}

func byHost(clusters map[string]kubernetes.Interface) func(*rest.Config, *http.Client) (kubernetes.Interface, error) {
	return func(c *rest.Config, _ *http.Client) (kubernetes.Interface, error) {
		cs, ok := clusters[c.Host]
		if !ok {
			return nil, errors.New("no fake cluster at " + c.Host)
		}
		return cs, nil
	}
}

// listSecrets is a per-context function: the names of the Secrets in the
// context's namespace.
func listSecrets(calls *atomic.Int32) Func {
	return func(ctx context.Context, c *Cluster) (Result, error) {
		calls.Add(1)
		l, err := c.Client.CoreV1().Secrets(c.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return Result{}, err
		}
		var names []string
		for _, s := range l.Items {
			names = append(names, s.Name)
		}
		return Result{Object: names, Counts: map[string]int{"secrets": len(names)}}, nil
	}
}

func section(t *testing.T, r *Report, context string) Section {
	t.Helper()
	for _, s := range r.Clusters {
		if s.Context == context {
			return s
		}
	}
	t.Fatalf("no section for context %s in %+v", context, r.Clusters)
	return Section{}
}

func TestSelect(t *testing.T) {
	cfg := kubeconfig(map[string]string{"prod-b": "x", "prod-a": "x", "dev": "x"})
	for _, tc := range []struct {
		name string
		sel  Selection
		want []string
		err  string
	}{
		{"all, sorted", Selection{All: true}, []string{"dev", "prod-a", "prod-b"}, ""},
		{"all, selector", Selection{All: true, Selector: "^prod-"}, []string{"prod-a", "prod-b"}, ""},
		{"named, in order, once", Selection{Contexts: []string{"prod-b", "dev", "prod-b"}}, []string{"prod-b", "dev"}, ""},
		{"named and selector", Selection{Contexts: []string{"prod-b", "dev"}, Selector: "prod"}, []string{"prod-b"}, ""},
		{"missing", Selection{Contexts: []string{"dev", "nope"}}, nil, "context nope not found"},
		{"nothing matches", Selection{All: true, Selector: "staging"}, nil, "no context selected"},
		{"bad regexp", Selection{All: true, Selector: "("}, nil, "context selector"},
		{"neither", Selection{}, nil, "not both nor neither"},
		{"both", Selection{All: true, Contexts: []string{"dev"}}, nil, "not both nor neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(cfg, tc.sel)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// Three clusters, one reached by two contexts: each section holds its own
// cluster's data in its own context's namespace, the alias is listed and
// not run, and the exit code is 0.
func TestRunKeepsClustersApartAndRunsAliasesOnce(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "b": "https://b", "c": "https://c", "a-again": "https://a-other-url"})
	a := fakeCluster("a", "ns-a", "ns-a-again")
	clusters := map[string]kubernetes.Interface{
		"https://a": a, "https://a-other-url": a,
		"https://b": fakeCluster("b", "ns-b"), "https://c": fakeCluster("c", "ns-c"),
	}
	var calls atomic.Int32
	names, _ := Select(cfg, Selection{All: true})
	r, err := Run(context.Background(), cfg, names, "test", listSecrets(&calls), Options{NewClient: byHost(clusters)})
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("ran %d times, want 3 (the alias runs once)", n)
	}
	if len(r.Clusters) != 3 {
		t.Fatalf("%d sections, want 3: %+v", len(r.Clusters), r.Clusters)
	}
	for _, name := range []string{"a", "b", "c"} {
		s := section(t, r, name)
		if want := []string{"secret-of-" + name}; !reflect.DeepEqual(s.Result, want) {
			t.Errorf("context %s: result %v, want %v", name, s.Result, want)
		}
		if s.KubernetesVersion != "v1.34.0-"+name || s.Namespace != "ns-"+name || s.Server != "https://"+name {
			t.Errorf("context %s: section %+v", name, s)
		}
	}
	if got := section(t, r, "a").Aliases; !reflect.DeepEqual(got, []string{"a-again"}) {
		t.Errorf("aliases of a = %v, want [a-again]", got)
	}
	if r.Summary.Clusters != 3 || r.Summary.Contexts != 4 || r.Summary.Verdicts["secrets"] != 3 || len(r.Summary.FailedClusters) != 0 {
		t.Errorf("summary %+v", r.Summary)
	}
	if r.ExitCode() != ExitOK || r.APIVersion != "bound-token.kubectl.io/v1alpha1" || r.Kind != "FleetReport" {
		t.Errorf("exit %d, %s %s", r.ExitCode(), r.APIVersion, r.Kind)
	}
}

// With EachContext, a context that reaches a cluster an earlier one
// reached runs too, and each is given the uid of the cluster it reaches.
func TestRunEachContextRunsAliases(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "a-again": "https://a-other-url"})
	a := fakeCluster("a", "ns-a", "ns-a-again")
	clusters := map[string]kubernetes.Interface{"https://a": a, "https://a-other-url": a}
	var mu sync.Mutex
	uids := map[string]string{}
	fn := func(_ context.Context, c *Cluster) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		uids[c.Context] = c.UID
		return Result{}, nil
	}
	r, err := Run(context.Background(), cfg, []string{"a", "a-again"}, "test", fn, Options{NewClient: byHost(clusters), EachContext: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "uid-a", "a-again": "uid-a"}; !reflect.DeepEqual(uids, want) {
		t.Errorf("ran with uids %v, want %v", uids, want)
	}
	if len(r.Clusters) != 2 || len(r.Clusters[0].Aliases) != 0 {
		t.Errorf("sections %+v, want two, no alias", r.Clusters)
	}
}

// -n applies in every context.
func TestRunNamespaceOverridesEveryContext(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "b": "https://b"})
	clusters := map[string]kubernetes.Interface{"https://a": fakeCluster("a", "shared"), "https://b": fakeCluster("b", "shared")}
	var calls atomic.Int32
	r, err := Run(context.Background(), cfg, []string{"a", "b"}, "test", listSecrets(&calls), Options{Namespace: "shared", NewClient: byHost(clusters)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if s := section(t, r, name); s.Namespace != "shared" || !reflect.DeepEqual(s.Result, []string{"secret-of-" + name}) {
			t.Errorf("context %s: %+v", name, s)
		}
	}
}

func refusing(name string, err error) *fake.Clientset {
	cs := fakeCluster(name)
	cs.PrependReactor("*", "*", func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, err })
	return cs
}

// One cluster refusing the credentials, one forbidding, one erring in the
// function: each is reported with its reason; the others report, exit 1.
func TestRunReportsEachFailureAndGoesOn(t *testing.T) {
	cfg := kubeconfig(map[string]string{"ok": "https://ok", "denied": "https://denied", "broken": "https://broken", "noconfig": "https://nothing-there"})
	clusters := map[string]kubernetes.Interface{
		"https://ok":     fakeCluster("ok", "ns-ok"),
		"https://denied": refusing("denied", apierrors.NewUnauthorized("Unauthorized")),
		"https://broken": fakeCluster("broken", "ns-broken"),
	}
	var calls atomic.Int32
	list := listSecrets(&calls)
	fn := func(ctx context.Context, c *Cluster) (Result, error) {
		if c.Context == "broken" {
			return Result{}, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("no list"))
		}
		return list(ctx, c)
	}
	r, err := Run(context.Background(), cfg, []string{"ok", "denied", "broken", "noconfig"}, "test", fn, Options{NewClient: byHost(clusters)})
	if err != nil {
		t.Fatal(err)
	}
	if s := section(t, r, "ok"); !s.OK() || !reflect.DeepEqual(s.Result, []string{"secret-of-ok"}) {
		t.Errorf("ok: %+v", s)
	}
	if s := section(t, r, "denied"); s.Reason != ReasonUnauthorized || !strings.Contains(s.Error, "refused the context's credentials") {
		t.Errorf("denied: %+v", s)
	}
	if s := section(t, r, "broken"); s.Reason != ReasonForbidden {
		t.Errorf("broken: %+v", s)
	}
	if s := section(t, r, "noconfig"); s.Error == "" {
		t.Errorf("noconfig: %+v", s)
	}
	if got := r.Summary.FailedClusters; !reflect.DeepEqual(got, []string{"denied", "broken", "noconfig"}) {
		t.Errorf("failed clusters %v", got)
	}
	if r.ExitCode() != ExitFailed {
		t.Errorf("exit %d, want 1", r.ExitCode())
	}
}

func TestExitCodes(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "b": "https://b"})
	denied := apierrors.NewUnauthorized("Unauthorized")
	for _, tc := range []struct {
		name     string
		a, b     kubernetes.Interface
		failedOn string
		want     int
	}{
		{"all succeeded", fakeCluster("a"), fakeCluster("b"), "", ExitOK},
		{"one answered no", fakeCluster("a"), fakeCluster("b"), "b", ExitFailed},
		{"one not checked", fakeCluster("a"), refusing("b", denied), "", ExitFailed},
		{"none checked", refusing("a", denied), refusing("b", denied), "", ExitNothingChecked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := func(_ context.Context, c *Cluster) (Result, error) {
				return Result{Failed: c.Context == tc.failedOn}, nil
			}
			r, err := Run(context.Background(), cfg, []string{"a", "b"}, "test", fn,
				Options{NewClient: byHost(map[string]kubernetes.Interface{"https://a": tc.a, "https://b": tc.b})})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.ExitCode(); got != tc.want {
				t.Errorf("exit %d, want %d (%+v)", got, tc.want, r.Summary)
			}
		})
	}
}

// A cluster whose function never returns, not even on ctx, ends with its
// own timeout; the others report.
func TestRunTimesOutOneClusterOnly(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "hangs": "https://hangs", "c": "https://c"})
	clusters := map[string]kubernetes.Interface{"https://a": fakeCluster("a", "ns-a"), "https://hangs": fakeCluster("hangs"), "https://c": fakeCluster("c", "ns-c")}
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	list := listSecrets(&calls)
	fn := func(ctx context.Context, c *Cluster) (Result, error) {
		if c.Context == "hangs" {
			<-release // ignores ctx on purpose
		}
		return list(ctx, c)
	}
	r, err := Run(context.Background(), cfg, []string{"a", "hangs", "c"}, "test", fn,
		Options{ContextTimeout: 300 * time.Millisecond, NewClient: byHost(clusters)})
	if err != nil {
		t.Fatal(err)
	}
	if s := section(t, r, "hangs"); s.Reason != ReasonTimeout || !strings.Contains(s.Error, "context timeout (300ms)") {
		t.Errorf("hangs: %+v", s)
	}
	for _, name := range []string{"a", "c"} {
		if s := section(t, r, name); !s.OK() || !reflect.DeepEqual(s.Result, []string{"secret-of-" + name}) {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if !reflect.DeepEqual(r.Summary.FailedClusters, []string{"hangs"}) || r.ExitCode() != ExitFailed {
		t.Errorf("summary %+v, exit %d", r.Summary, r.ExitCode())
	}
}

// Contexts whose exec plugin may ask on the terminal connect one at a
// time; the others in parallel.
func TestInteractiveExecPluginsRunOneAtATime(t *testing.T) {
	for _, tc := range []struct {
		mode     clientcmdapi.ExecInteractiveMode
		terminal bool
		serial   bool
	}{
		{clientcmdapi.AlwaysExecInteractiveMode, false, true},
		{clientcmdapi.IfAvailableExecInteractiveMode, true, true},
		{clientcmdapi.IfAvailableExecInteractiveMode, false, false},
		{clientcmdapi.NeverExecInteractiveMode, true, false},
	} {
		t.Run(string(tc.mode)+map[bool]string{true: "-terminal", false: ""}[tc.terminal], func(t *testing.T) {
			servers := map[string]string{}
			clusters := map[string]kubernetes.Interface{}
			var names []string
			for _, n := range []string{"a", "b", "c", "d"} {
				servers[n] = "https://" + n
				clusters["https://"+n] = fakeCluster(n)
				names = append(names, n)
			}
			cfg := kubeconfig(servers)
			for _, ai := range cfg.AuthInfos {
				ai.Token = ""
				ai.Exec = &clientcmdapi.ExecConfig{Command: "login", APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: tc.mode}
			}
			var active, most atomic.Int32
			var mu sync.Mutex
			newClient := func(c *rest.Config, hc *http.Client) (kubernetes.Interface, error) {
				n := active.Add(1)
				mu.Lock()
				most.Store(max(most.Load(), n))
				mu.Unlock()
				time.Sleep(50 * time.Millisecond) // the plugin asking
				active.Add(-1)
				return byHost(clusters)(c, hc)
			}
			fn := func(context.Context, *Cluster) (Result, error) { return Result{}, nil }
			r, err := Run(context.Background(), cfg, names, "test", fn, Options{Terminal: tc.terminal, NewClient: newClient})
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitCode() != ExitOK {
				t.Fatalf("%+v", r.Clusters)
			}
			if got := most.Load() == 1; got != tc.serial {
				t.Errorf("at most %d at once; one at a time = %v, want %v", most.Load(), got, tc.serial)
			}
		})
	}
}

// Two contexts with equal TLS settings still get transports of their
// own: client-go's shared transport cache would give them one.
func TestEachContextHasItsOwnTransport(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://same", "b": "https://same"})
	cfg.Contexts["b"].Cluster, cfg.Contexts["b"].AuthInfo = "a", "a"
	// No credential: a bearer token would wrap each transport anyway and
	// hide whether the one underneath is shared.
	cfg.AuthInfos["a"].Token = ""
	a := fakeCluster("a")
	b := fakeCluster("b") // same server, but a different cluster answers
	var n atomic.Int32
	var mu sync.Mutex
	given := map[*http.Client]bool{} // the HTTP clients NewClient got
	newClient := func(_ *rest.Config, hc *http.Client) (kubernetes.Interface, error) {
		mu.Lock()
		given[hc] = true
		mu.Unlock()
		if n.Add(1) == 1 {
			return a, nil
		}
		return b, nil
	}
	var transports []http.RoundTripper
	fn := func(_ context.Context, c *Cluster) (Result, error) {
		rt, err := rest.TransportFor(c.Config)
		mu.Lock()
		defer mu.Unlock()
		transports = append(transports, rt, c.HTTPClient.Transport)
		if !given[c.HTTPClient] {
			t.Errorf("context %s: Cluster.HTTPClient is not the client's own", c.Context)
		}
		return Result{}, err
	}
	r, err := Run(context.Background(), cfg, []string{"a", "b"}, "test", fn, Options{NewClient: newClient})
	if err != nil || r.ExitCode() != ExitOK {
		t.Fatalf("%v %+v", err, r)
	}
	if len(transports) != 4 || transports[0] == transports[2] || transports[1] == transports[3] {
		t.Fatalf("contexts share a transport: %v", transports)
	}
}

// Progress counts every context, aliases and failures included.
func TestProgressCountsEveryContext(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "a2": "https://a2", "down": "https://down"})
	a := fakeCluster("a")
	clusters := map[string]kubernetes.Interface{"https://a": a, "https://a2": a, "https://down": refusing("down", errors.New("dial tcp: connection refused"))}
	var seen []int
	fn := func(context.Context, *Cluster) (Result, error) { return Result{}, nil }
	_, err := Run(context.Background(), cfg, []string{"a", "a2", "down"}, "test", fn,
		Options{NewClient: byHost(clusters), Progress: func(done, total int) {
			if total != 3 {
				t.Errorf("total %d", total)
			}
			seen = append(seen, done)
		}})
	if err != nil {
		t.Fatal(err)
	}
	sort.Ints(seen)
	if !reflect.DeepEqual(seen, []int{1, 2, 3}) {
		t.Errorf("progress %v", seen)
	}
}

// A cluster's timeout counts its own work: waiting for a slow cluster
// earlier in run order to connect does not use up the others' time.
func TestTimeoutIsPerCluster(t *testing.T) {
	cfg := kubeconfig(map[string]string{"fast": "https://fast", "slow": "https://slow"})
	fast, slow := fakeCluster("fast"), fakeCluster("slow")
	newClient := func(c *rest.Config, _ *http.Client) (kubernetes.Interface, error) {
		if c.Host == "https://slow" {
			time.Sleep(time.Second) // connecting takes most of slow's time
			return slow, nil
		}
		return fast, nil
	}
	fn := func(ctx context.Context, c *Cluster) (Result, error) {
		if c.Context == "fast" {
			time.Sleep(600 * time.Millisecond) // more than is left of slow's time
		}
		return Result{}, nil
	}
	r, err := Run(context.Background(), cfg, []string{"slow", "fast"}, "test", fn, Options{ContextTimeout: 1200 * time.Millisecond, NewClient: newClient})
	if err != nil {
		t.Fatal(err)
	}
	if s := section(t, r, "fast"); !s.OK() {
		t.Errorf("fast: %+v", s)
	}
}

// A cluster runs once every earlier context has connected, without
// waiting for the later ones; the first context of a cluster in run order
// is the one that runs even when its alias connects first.
func TestRunDoesNotWaitForLaterContexts(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "a2": "https://a2", "slow": "https://slow"})
	a, slow := fakeCluster("a"), fakeCluster("slow")
	var mu sync.Mutex
	var slowConnected, aRan time.Time
	newClient := func(c *rest.Config, _ *http.Client) (kubernetes.Interface, error) {
		switch c.Host {
		case "https://a":
			time.Sleep(100 * time.Millisecond) // a2, its alias, connects first
			return a, nil
		case "https://a2":
			return a, nil
		}
		time.Sleep(time.Second)
		mu.Lock()
		slowConnected = time.Now()
		mu.Unlock()
		return slow, nil
	}
	var ran []string
	fn := func(_ context.Context, c *Cluster) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, c.Context)
		if c.Context == "a" {
			aRan = time.Now()
		}
		return Result{}, nil
	}
	r, err := Run(context.Background(), cfg, []string{"a", "a2", "slow"}, "test", fn, Options{NewClient: newClient})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ran)
	if !reflect.DeepEqual(ran, []string{"a", "slow"}) || !reflect.DeepEqual(section(t, r, "a").Aliases, []string{"a2"}) {
		t.Fatalf("ran %v, sections %+v; want a (alias a2) and slow", ran, r.Clusters)
	}
	if !aRan.Before(slowConnected) {
		t.Errorf("a ran at %s, after slow connected at %s: it waited for a later context", aRan.Format(time.StampMilli), slowConnected.Format(time.StampMilli))
	}
}

// WriteJSON prints the same bytes as cli-runtime's JSON printer, which
// -o json used before: results, failures, aliases, and no clusters.
func TestWriteJSONIsTheJSONPrinters(t *testing.T) {
	full := &Report{TypeMeta: metav1.TypeMeta{APIVersion: "bound-token.kubectl.io/v1alpha1", Kind: "FleetReport"}, Command: "migrate",
		Clusters: []Section{
			{Context: "a", Server: "https://a", KubernetesVersion: "v1.34.4", Namespace: "app", Aliases: []string{"a2"},
				Result: map[string]any{"items": []any{map[string]any{"name": "tok <&>", "n": 1.5}}, "empty": []any{}}},
			{Context: "b", Server: "https://b", Reason: ReasonTimeout, Error: "no answer within the context timeout (2m0s)"},
			{Context: "c", Result: []string{}, Failed: true},
		},
		Summary: Summary{Clusters: 3, Contexts: 4, Checked: 2, Verdicts: map[string]int{"used": 1, "invalidate": 2}, FailedClusters: []string{"b", "c"}}}
	for name, r := range map[string]*Report{
		"full":        full,
		"no clusters": {TypeMeta: full.TypeMeta, Command: "doctor", Clusters: []Section{}, Summary: Summary{Verdicts: map[string]int{}}},
		"nil":         {TypeMeta: full.TypeMeta, Command: "switch"},
	} {
		t.Run(name, func(t *testing.T) {
			var want, got bytes.Buffer
			if err := (&printers.OmitManagedFieldsPrinter{Delegate: &printers.JSONPrinter{}}).PrintObj(r, &want); err != nil {
				t.Fatal(err)
			}
			if err := r.WriteJSON(&got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("WriteJSON differs from the JSON printer (-printer +WriteJSON):\n%s", diff)
			}
		})
	}
}

// Impersonation and -A apply in every context: each context's config
// impersonates on top of its own credentials, and no section names a
// namespace.
func TestImpersonationAndAllNamespacesApplyInEveryContext(t *testing.T) {
	cfg := kubeconfig(map[string]string{"a": "https://a", "b": "https://b"})
	clusters := map[string]kubernetes.Interface{"https://a": fakeCluster("a"), "https://b": fakeCluster("b")}
	var mu sync.Mutex
	seen := map[string]*Cluster{}
	fn := func(_ context.Context, c *Cluster) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		seen[c.Context] = c
		return Result{}, nil
	}
	im := rest.ImpersonationConfig{UserName: "auditor", UID: "42", Groups: []string{"readers"}}
	r, err := Run(context.Background(), cfg, []string{"a", "b"}, "test", fn,
		Options{Namespace: "ignored", AllNamespaces: true, Impersonate: im, NewClient: byHost(clusters)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		c := seen[n]
		if c == nil {
			t.Fatalf("context %s did not run", n)
		}
		got := c.Config.Impersonate
		if got.UserName != im.UserName || got.UID != im.UID || !reflect.DeepEqual(got.Groups, im.Groups) || c.Config.BearerToken != cfg.AuthInfos[n].Token {
			t.Errorf("context %s: impersonate %+v with token %q; want %+v on top of its own token", n, got, c.Config.BearerToken, im)
		}
		if c.Namespace != "" || section(t, r, n).Namespace != "" {
			t.Errorf("context %s: namespace %q, section %q; want none with -A", n, c.Namespace, section(t, r, n).Namespace)
		}
	}
}
