package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/kuberc"
)

// Defaults of Options.Parallel and Options.ContextTimeout.
const (
	DefaultParallel       = 8
	DefaultContextTimeout = 2 * time.Minute
)

// Exit codes of a fleet run (Report.ExitCode), the plugin's usual three.
const (
	ExitOK = 0
	// ExitFailed: some cluster failed (or its answer was no), others were
	// checked.
	ExitFailed = 1
	// ExitNothingChecked: no cluster could be checked.
	ExitNothingChecked = 2
)

// Reasons a cluster was not checked (Section.Reason).
const (
	ReasonTimeout      = "Timeout"
	ReasonUnreachable  = "Unreachable"
	ReasonUnauthorized = "Unauthorized"
	ReasonForbidden    = "Forbidden"
	ReasonConfig       = "InvalidConfiguration"
	ReasonFailed       = "Failed"
)

// Selection names the contexts of a run.
type Selection struct {
	// Contexts, in this order; or, with All, every context of the
	// kubeconfig, sorted by name.
	Contexts []string
	All      bool
	// Selector, when set, keeps the contexts whose name it matches
	// (anywhere in the name, as grep does).
	Selector string
}

// Select returns the names of the selected contexts of cfg, in run order.
func Select(cfg *clientcmdapi.Config, s Selection) ([]string, error) {
	if s.All == (len(s.Contexts) > 0) {
		return nil, errors.New("name the contexts or select all of them, not both nor neither")
	}
	var re *regexp.Regexp
	if s.Selector != "" {
		var err error
		if re, err = regexp.Compile(s.Selector); err != nil {
			return nil, fmt.Errorf("context selector %q: %v", s.Selector, err)
		}
	}
	var names []string
	if s.All {
		for name := range cfg.Contexts {
			names = append(names, name)
		}
		sort.Strings(names)
	} else {
		seen := map[string]bool{}
		var missing []string
		for _, n := range s.Contexts {
			n = strings.TrimSpace(n)
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			if _, ok := cfg.Contexts[n]; !ok {
				missing = append(missing, n)
				continue
			}
			names = append(names, n)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("context %s not found in the kubeconfig", strings.Join(missing, ", "))
		}
	}
	if re != nil {
		kept := names[:0]
		for _, n := range names {
			if re.MatchString(n) {
				kept = append(kept, n)
			}
		}
		names = kept
	}
	if len(names) == 0 {
		return nil, errors.New("no context selected: the kubeconfig has none that match")
	}
	return names, nil
}

// Cluster is what a per-context function gets: one cluster, reached
// through the first of its contexts.
type Cluster struct {
	Context string
	Server  string
	// Namespace is the namespace to work in: "" with
	// Options.AllNamespaces, Options.Namespace when set,
	// else the context's own, else "default".
	Namespace string
	// Version is kube-apiserver's gitVersion.
	Version string
	// UID is the uid of the cluster's kube-system namespace, which names
	// the cluster whatever URL or user reaches it; "" when it could not
	// be read (forbidden).
	UID string
	// Config is this context's own rest config, and HTTPClient its own
	// transport: a function that needs another client (dynamic,
	// metadata) builds it from both (NewForConfigAndClient), so that it
	// shares the context's connection instead of opening another.
	Config     *rest.Config
	HTTPClient *http.Client
	Client     kubernetes.Interface
}

// Result is a per-context function's answer.
type Result struct {
	// Object is printed as the section's result (-o json|yaml).
	Object any
	// Counts are added up in the summary (Secrets per verdict, workloads
	// per verdict, checks per status).
	Counts map[string]int
	// Failed says the run's answer for this cluster is no (a failed
	// check): the cluster counts as failed, its result is still shown.
	Failed bool
}

// Func checks one cluster. It must honour ctx: its deadline is the
// context's timeout.
type Func func(ctx context.Context, c *Cluster) (Result, error)

// Options tune a run.
type Options struct {
	// Namespace, when set, is used in every context (-n); otherwise each
	// context's own namespace.
	Namespace string
	// AllNamespaces: fn works across all namespaces (-A), so a section
	// names none.
	AllNamespaces bool
	// Impersonate, when its UserName is set, is applied in every context
	// on top of its own credentials, as kubectl's --as, --as-uid and
	// --as-group are on top of the current context's.
	Impersonate rest.ImpersonationConfig
	// Parallel is how many clusters are checked at once.
	Parallel int
	// ContextTimeout bounds each cluster, from its first request to its
	// answer.
	ContextTimeout time.Duration
	// QPS and Burst of each cluster's client (zero: client-go's defaults).
	QPS   float32
	Burst int
	// CredentialPluginPolicy governs each context's exec credential
	// plugin (the user's kuberc, pkg/kuberc); zero allows all.
	CredentialPluginPolicy clientcmdapi.PluginPolicy
	// Terminal says stdin is a terminal: exec credential plugins with
	// interactiveMode IfAvailable then may ask on it, and are run one at
	// a time, like those with Always.
	Terminal bool
	// Warnings, when set, gets the server's warnings, one line each,
	// prefixed with the context's name.
	Warnings io.Writer
	// Progress, when set, is called after each cluster is done.
	Progress func(done, total int)
	// EachContext runs fn in every context, even one that reaches a
	// cluster an earlier context reached (no aliases): for a run that
	// must check each context itself, such as a restore that compares
	// the cluster a context reaches with the one its backup names.
	EachContext bool
	// NewClient builds a context's client on its HTTP client (tests give
	// fake ones); default kubernetes.NewForConfigAndClient.
	NewClient func(*rest.Config, *http.Client) (kubernetes.Interface, error)
}

// Report is a fleet run as printed by -o json|yaml: a section per
// cluster, then the summary. Its group is the plugin's own
// (kubeapi.OutputGroupVersion), as for every printed document.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	// Command is what ran in every context (migrate, doctor, switch).
	Command  string    `json:"command"`
	Clusters []Section `json:"clusters"`
	Summary  Summary   `json:"summary"`
}

// Section is one cluster's answer, or why there is none.
type Section struct {
	Context           string `json:"context"`
	Server            string `json:"server,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	Namespace         string `json:"namespace,omitempty"`
	// Aliases are the other selected contexts that reach this cluster;
	// they were not run again.
	Aliases []string `json:"aliases,omitempty"`
	Result  any      `json:"result,omitempty"`
	// Failed says the result's answer is no (see Result.Failed).
	Failed bool `json:"failed,omitempty"`
	// Reason and Error say why the cluster was not checked.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`

	counts map[string]int
}

// OK reports whether the cluster was checked and its answer is yes.
func (s *Section) OK() bool { return s.Error == "" && !s.Failed }

// Summary adds the sections up.
type Summary struct {
	// Clusters is the number of distinct clusters (aliases counted once);
	// Contexts the number of selected contexts.
	Clusters int `json:"clusters"`
	Contexts int `json:"contexts"`
	// Checked clusters answered (whether yes or no).
	Checked int `json:"checked"`
	// Verdicts adds up the clusters' counts: Secrets per verdict for
	// migrate, workloads per verdict for switch, checks per status for
	// doctor.
	Verdicts map[string]int `json:"verdicts"`
	// FailedClusters names (by context) the clusters that failed or
	// answered no.
	FailedClusters []string `json:"failedClusters"`
}

// DeepCopyObject makes Report a runtime.Object for cli-runtime's printers.
// The results are shared: a report is printed, never changed.
func (r *Report) DeepCopyObject() runtime.Object {
	c := *r
	c.Clusters = append([]Section(nil), r.Clusters...)
	return &c
}

// ExitCode is 0 when every cluster was checked and its answer is yes, 2
// when no cluster could be checked, 1 otherwise.
func (r *Report) ExitCode() int {
	if r.Summary.Checked == 0 {
		return ExitNothingChecked
	}
	if len(r.Summary.FailedClusters) > 0 {
		return ExitFailed
	}
	return ExitOK
}

// target is one selected context, ready to connect.
type target struct {
	name        string
	server      string
	namespace   string
	interactive bool
	config      *rest.Config
	err         error

	// After connecting:
	httpClient *http.Client
	client     kubernetes.Interface
	version    string
	uid        string // kube-system's uid; empty when it could not be read
	section    *Section
	// aliasOf is the earlier context that reaches the same cluster.
	aliasOf *target
	// connectTook is the part of the timeout connecting used.
	connectTook time.Duration
}

// Run runs fn once per distinct cluster among the contexts of cfg named by
// names (see Select), and returns the report. It returns an error only
// for a cancelled ctx; each cluster's own failure is in its section.
func Run(ctx context.Context, cfg *clientcmdapi.Config, names []string, command string, fn Func, o Options) (*Report, error) {
	o = o.withDefaults()
	r := &fleetRun{o: o, fn: fn, targets: make([]*target, len(names)), connected: make([]chan struct{}, len(names))}
	var warnMu sync.Mutex // one writer, many clusters
	for i, n := range names {
		r.targets[i] = newTarget(cfg, n, o, &warnMu)
		r.connected[i] = make(chan struct{})
	}
	r.step = progressCounter(o.Progress, len(names))
	eachIndex(len(r.targets), o.Parallel, func(i int) { r.runTarget(ctx, i) })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newReport(command, r.targets), nil
}

// withDefaults fills in what o leaves unset.
func (o Options) withDefaults() Options {
	if o.Parallel < 1 {
		o.Parallel = DefaultParallel
	}
	if o.ContextTimeout <= 0 {
		o.ContextTimeout = DefaultContextTimeout
	}
	if o.NewClient == nil {
		o.NewClient = func(c *rest.Config, hc *http.Client) (kubernetes.Interface, error) {
			return kubernetes.NewForConfigAndClient(c, hc)
		}
	}
	return o
}

// progressCounter returns what each cluster calls when it is done: it
// counts them and tells progress (nil: nothing to tell).
func progressCounter(progress func(done, total int), total int) func() {
	if progress == nil {
		return func() {}
	}
	done := 0
	var mu sync.Mutex
	return func() {
		mu.Lock()
		defer mu.Unlock()
		done++
		progress(done, total)
	}
}

// fleetRun is what the contexts of one Run share.
//
// Each context connects (learns which cluster it is), then runs fn
// unless an earlier context in run order reaches the same cluster.
// A context decides once every earlier one has connected, so that the
// first context of a cluster is the one that runs, whatever the
// timing; it does not wait for the later ones, so that one cluster's
// run overlaps the others' connecting.
type fleetRun struct {
	o       Options
	fn      Func
	targets []*target
	// connected[i] is closed once targets[i] has connected or failed to.
	connected []chan struct{}
	// interactive is held by a context whose credential plugin may ask
	// on the terminal.
	interactive sync.Mutex
	step        func()
}

// runTarget connects targets[i] and, once every earlier context has
// connected, runs fn in it, or marks it an alias of the earlier context
// that reaches the same cluster.
func (r *fleetRun) runTarget(ctx context.Context, i int) {
	t := r.targets[i]
	r.connect(ctx, i)
	for j := 0; j < i; j++ {
		select {
		case <-r.connected[j]:
		case <-ctx.Done():
			return
		}
	}
	t.section = &Section{Context: t.name, Server: t.server, KubernetesVersion: t.version, Namespace: t.namespace}
	if t.err != nil {
		t.section.Reason, t.section.Error = classify(t.err, r.o.ContextTimeout)
		r.step()
		return
	}
	if t.uid != "" && !r.o.EachContext {
		for _, first := range r.targets[:i] {
			if first.err == nil && first.uid == t.uid {
				t.aliasOf = first
				r.step()
				return
			}
		}
	}
	defer r.step()
	r.check(ctx, t)
}

// connect connects targets[i] within the context's timeout and says so
// on connected[i], whether it succeeded or not.
func (r *fleetRun) connect(ctx context.Context, i int) {
	defer close(r.connected[i])
	t := r.targets[i]
	if t.err != nil {
		return
	}
	if t.interactive {
		// An exec plugin that may ask on the terminal: one at
		// a time, so that two prompts never share it. The
		// credential it returns is kept by this context's
		// client for the run.
		r.interactive.Lock()
		defer r.interactive.Unlock()
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, r.o.ContextTimeout)
	defer cancel()
	t.err = bounded(cctx, r.o.ContextTimeout, func(ctx context.Context) error { return t.connect(ctx, r.o) })
	t.connectTook = time.Since(start)
}

// check runs fn in a connected context and puts its answer, or why there
// is none, in the context's section.
func (r *fleetRun) check(ctx context.Context, t *target) {
	// The timeout bounds the cluster's own work, not the wait for
	// the others to connect.
	left := r.o.ContextTimeout - t.connectTook
	cctx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	c := &Cluster{Context: t.name, Server: t.server, Namespace: t.namespace, Version: t.version, UID: t.uid, Config: t.config,
		HTTPClient: t.httpClient, Client: t.client}
	var res Result
	err := bounded(cctx, r.o.ContextTimeout, func(ctx context.Context) error {
		var err error
		res, err = r.fn(ctx, c)
		return err
	})
	if err != nil {
		t.section.Reason, t.section.Error = classify(err, r.o.ContextTimeout)
		return
	}
	t.section.Result, t.section.Failed, t.section.counts = res.Object, res.Failed, res.Counts
}

// newReport gathers the sections of a run's targets, in run order, each
// alias listed under the context that ran, and adds them up.
func newReport(command string, targets []*target) *Report {
	r := &Report{TypeMeta: metav1.TypeMeta{APIVersion: kubeapi.OutputGroupVersion.String(), Kind: "FleetReport"}, Command: command,
		Summary: Summary{Contexts: len(targets), Verdicts: map[string]int{}, FailedClusters: []string{}}}
	for _, t := range targets {
		if t.aliasOf != nil {
			// Aliases are named by the context that ran.
			t.aliasOf.section.Aliases = append(t.aliasOf.section.Aliases, t.name)
			t.section = nil
		}
	}
	for _, t := range targets {
		if t.section == nil {
			continue // an alias
		}
		s := t.section
		r.Clusters = append(r.Clusters, *s)
		r.Summary.Clusters++
		if s.Error == "" {
			r.Summary.Checked++
		}
		if !s.OK() {
			r.Summary.FailedClusters = append(r.Summary.FailedClusters, s.Context)
		}
		for k, n := range s.counts {
			r.Summary.Verdicts[k] += n
		}
	}
	return r
}

// newTarget builds the context's own rest config, as kubectl would with
// --context NAME (clientcmd.DirectClientConfig.ClientConfig), without
// prompting: a fleet never asks for a password on the terminal.
func newTarget(cfg *clientcmdapi.Config, name string, o Options, warnMu *sync.Mutex) *target {
	t := &target{name: name}
	kctx := cfg.Contexts[name]
	if kctx == nil {
		t.err = fmt.Errorf("context %q not found in the kubeconfig", name)
		return t
	}
	if c := cfg.Clusters[kctx.Cluster]; c != nil {
		t.server = c.Server
	}
	// The overrides kubectl's own flags make for --as, --as-uid and
	// --as-group (k8s.io/cli-runtime/pkg/genericclioptions/config_flags.go,
	// toRawKubeConfigLoader), so that clientcmd builds the impersonating
	// config as it does for kubectl.
	var ov clientcmd.ConfigOverrides
	if im := o.Impersonate; im.UserName != "" {
		ov.AuthInfo.Impersonate, ov.AuthInfo.ImpersonateUID, ov.AuthInfo.ImpersonateGroups = im.UserName, im.UID, im.Groups
	}
	cc := clientcmd.NewNonInteractiveClientConfig(*cfg, name, &ov, nil)
	t.namespace = o.Namespace
	if o.AllNamespaces {
		t.namespace = ""
	} else if t.namespace == "" {
		ns, _, err := cc.Namespace()
		if err != nil {
			t.err = err
			return t
		}
		t.namespace = ns
	}
	rc, err := cc.ClientConfig()
	if err != nil {
		t.err = err
		return t
	}
	kuberc.Apply(rc, o.CredentialPluginPolicy)
	t.interactive = needsTerminal(rc.ExecProvider, o.Terminal)
	if o.QPS > 0 {
		rc.QPS, rc.Burst = o.QPS, o.Burst
	}
	// A per-request ceiling too: a call that cannot take ctx (discovery)
	// still ends.
	rc.Timeout = o.ContextTimeout
	// A Dial of its own gives this context its own transport and
	// connection pool: client-go shares one transport between configs
	// whose TLS settings are equal (k8s.io/client-go/transport/cache.go,
	// tlsConfigKey keys on the DialHolder pointer, new for every config),
	// and its idle connections would then serve every such context.
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	rc.Dial = d.DialContext
	if o.Warnings != nil {
		rc.WarningHandler = &warnings{w: o.Warnings, mu: warnMu, context: name, seen: map[string]bool{}}
	}
	t.config = rc
	return t
}

// needsTerminal reports whether an exec credential plugin may ask on the
// terminal, as client-go decides it (k8s.io/client-go/plugin/pkg/client/
// auth/exec/exec.go, isInteractive): Always, or IfAvailable (also what an
// empty mode means for v1beta1) with a terminal on stdin.
func needsTerminal(e *clientcmdapi.ExecConfig, terminal bool) bool {
	if e == nil {
		return false
	}
	switch e.InteractiveMode {
	case clientcmdapi.AlwaysExecInteractiveMode:
		return true
	case clientcmdapi.IfAvailableExecInteractiveMode, "":
		return terminal && !e.StdinUnavailable
	}
	return false
}

// connect reaches the cluster: its version, and the uid of kube-system,
// which names the cluster whatever the URL or user a context reaches it
// through.
func (t *target) connect(ctx context.Context, o Options) error {
	hc, err := rest.HTTPClientFor(t.config)
	if err != nil {
		return err
	}
	cs, err := o.NewClient(t.config, hc)
	if err != nil {
		return err
	}
	t.httpClient, t.client = hc, cs
	// Both at once: over a slow link, connecting costs one round trip.
	var ns *corev1.Namespace
	var nsErr error
	got := make(chan struct{})
	go func() {
		defer close(got)
		ns, nsErr = cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	}()
	v, err := cs.Discovery().ServerVersion()
	<-got
	if err != nil {
		return err
	}
	t.version = v.GitVersion
	switch {
	case nsErr == nil:
		t.uid = string(ns.UID)
	case apierrors.IsForbidden(nsErr) || apierrors.IsNotFound(nsErr):
		// A user who may not read kube-system still gets their run;
		// only its aliases cannot be told.
	default:
		return nsErr
	}
	return nil
}

// bounded runs f and returns its error, or ctx's once ctx ends even if f
// does not return (a call that ignores ctx is left to rest.Config.Timeout).
func bounded(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("internal error: %v", p)
			}
		}()
		done <- f(ctx)
	}()
	select {
	case err := <-done:
		if err != nil && ctx.Err() == context.DeadlineExceeded {
			return timeoutError{timeout}
		}
		return err
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return timeoutError{timeout}
		}
		return ctx.Err()
	}
}

type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("no answer within the context timeout (%s)", e.d)
}

// classify names why a cluster was not checked, with a one-line error.
func classify(err error, timeout time.Duration) (reason, msg string) {
	msg = strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	var te timeoutError
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &te), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout, timeoutError{timeout}.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout, msg
	case apierrors.IsUnauthorized(err):
		return ReasonUnauthorized, "the cluster refused the context's credentials: " + msg
	case apierrors.IsForbidden(err):
		return ReasonForbidden, msg
	case clientcmd.IsConfigurationInvalid(err), clientcmd.IsEmptyConfig(err):
		return ReasonConfig, msg
	case errors.As(err, &ue):
		// No HTTP answer at all: refused, unresolvable, TLS failure.
		return ReasonUnreachable, msg
	}
	return ReasonFailed, msg
}

// eachIndex calls f(i) for i from 0 to n-1, in that order, at most
// parallel at once.
func eachIndex(n, parallel int, f func(int)) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// warnings writes a context's server warnings once each, naming the
// context: the process-wide handler cannot tell clusters apart.
type warnings struct {
	w       io.Writer
	mu      *sync.Mutex // shared by the contexts writing to w
	context string
	seen    map[string]bool
}

func (h *warnings) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen[text] {
		return
	}
	h.seen[text] = true
	fmt.Fprintf(h.w, "Warning: context %s: %s\n", h.context, text)
}

// WriteJSON writes r as cli-runtime's JSONPrinter does
// (k8s.io/cli-runtime/pkg/printers/json.go, PrintObj: json.MarshalIndent
// with four spaces, then a newline), byte for byte, but one section at a
// time: the printer builds the whole document in one buffer and indents
// it in a second pass, which over 50 clusters of 200 Secrets was a fifth
// of a run's CPU.
func (r *Report) WriteJSON(w io.Writer) error {
	if r.GetObjectKind().GroupVersionKind().Empty() {
		return errors.New("missing apiVersion or kind")
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	head, err := json.MarshalIndent(struct {
		metav1.TypeMeta `json:",inline"`
		Command         string `json:"command"`
	}{r.TypeMeta, r.Command}, "", "    ")
	if err != nil {
		return err
	}
	// head ends with "\n}": the fields of the report follow its last one.
	bw.Write(head[:len(head)-2])
	bw.WriteString(",\n    \"clusters\": ")
	switch {
	case r.Clusters == nil:
		bw.WriteString("null")
	case len(r.Clusters) == 0:
		bw.WriteString("[]")
	default:
		bw.WriteString("[\n")
		for i := range r.Clusters {
			b, err := json.MarshalIndent(&r.Clusters[i], "        ", "    ")
			if err != nil {
				return err
			}
			if i > 0 {
				bw.WriteString(",\n")
			}
			bw.WriteString("        ")
			bw.Write(b)
		}
		bw.WriteString("\n    ]")
	}
	sum, err := json.MarshalIndent(&r.Summary, "    ", "    ")
	if err != nil {
		return err
	}
	bw.WriteString(",\n    \"summary\": ")
	bw.Write(sum)
	bw.WriteString("\n}\n")
	return bw.Flush()
}
