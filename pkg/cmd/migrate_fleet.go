package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/fleet"
	"github.com/bound-token/kubectl-bound-token/pkg/fleetapply"
	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// migrate --contexts/--all-contexts --apply: cluster waves. The waves, the
// stop rule and the fleet index are pkg/fleetapply's; this file plans each
// cluster (the question), and changes one cluster as migrate --apply does
// (legacy.Apply into the cluster's own backup folder, guard.Waves for the
// watch), with the guard installed first where admission policies are
// served.

// FleetApplyKind is the kind of -o json|yaml of a fleet apply.
const FleetApplyKind = "FleetApply"

// guardProveWait is how long a cluster's guard install waits for its
// policy to act (guard install's default --timeout).
const guardProveWait = 30 * time.Second

// clusterWaveFlags are the cluster waves' flags.
type clusterWaveFlags struct {
	Growth                   int
	Watch                    time.Duration
	AllowUnguarded           bool
	growthSet, watchSet, set bool
}

func addClusterWaveFlags(cmd *cobra.Command, cw *clusterWaveFlags) {
	cw.Growth = fleetapply.DefaultGrowth
	fl := cmd.Flags()
	fl.IntVar(&cw.Growth, "cluster-wave-growth", cw.Growth, "With --contexts/--all-contexts --apply: the first cluster wave is one cluster, each next one this many times the one before (2: 1, 2, 4, ... clusters; 1: one at a time). Not the Secret waves of --wave-size.")
	fl.DurationVar(&cw.Watch, "cluster-wave-watch", 0, "With --contexts/--all-contexts --apply (required): how long each cluster wave is watched before the next, e.g. 30m; a guard's restore, a new last-used label or a rise of the invalid-token counter in any cluster of the wave stops the run.")
	fl.BoolVar(&cw.AllowUnguarded, "allow-unguarded-clusters", false, "With --contexts/--all-contexts --apply: also change clusters that serve no MutatingAdmissionPolicy. Their guard is a watch inside this run (guard watch), which ends with the run: after it, a client refused there stays refused until restore.")
}

func (cw *clusterWaveFlags) complete(cmd *cobra.Command) {
	cw.growthSet = cmd.Flags().Changed("cluster-wave-growth")
	cw.watchSet = cmd.Flags().Changed("cluster-wave-watch")
	cw.set = cw.growthSet || cw.watchSet || cmd.Flags().Changed("allow-unguarded-clusters")
}

// validateFleetApply checks the flags of a fleet apply.
func (o *MigrateOptions) validateFleetApply() error {
	if !o.fleet.enabled() || !o.Apply {
		return nil // the cluster-wave flags alone are refused by Complete
	}
	switch {
	case o.Mode != backup.ModeInvalidate:
		return fmt.Errorf("--mode %s over many clusters: cluster waves invalidate (a guard can restore an invalidated Secret, not a deleted one); delete with one --context at a time", o.Mode)
	case o.DryRun != cmdutil.DryRunNone:
		return fmt.Errorf("--dry-run over many clusters is not offered: the audit without --apply shows what each cluster would change")
	case o.Revoke:
		return fmt.Errorf("--revoke over many clusters: a revocation is meant at once, not in waves; use one --context")
	case !o.clusterWaves.watchSet || o.clusterWaves.Watch <= 0:
		return fmt.Errorf("--apply over many clusters needs --cluster-wave-watch DURATION (such as 30m): each cluster wave is watched before the next")
	case o.clusterWaves.Growth < 1:
		return fmt.Errorf("--cluster-wave-growth %d: use at least 1", o.clusterWaves.Growth)
	}
	return nil
}

// clusterPlan is one cluster's answer to the question: what --apply will
// change there, and how it is guarded.
type clusterPlan struct {
	UID    string         `json:"uid"`
	Change map[string]int `json:"change"`
	Skip   map[string]int `json:"leftAlone"`
	// Guard is "admission-policy" where MutatingAdmissionPolicy is
	// served, else "watch-for-this-run".
	Guard string `json:"guard"`
	// Done: an earlier run into the same folder finished it.
	Done bool `json:"done,omitempty"`

	allowed map[string]bool // NAMESPACE/NAME counted to change
	one     *MigrateOptions // the cluster's own options and clients
}

// Guards of a cluster (clusterPlan.Guard).
const (
	guardPolicy = "admission-policy"
	guardWatch  = "watch-for-this-run"
)

// fleetApplyReport is -o json|yaml of a fleet apply.
type fleetApplyReport struct {
	metav1.TypeMeta `json:",inline"`
	BackupDir       string `json:"backupDir"`
	*fleetapply.Result
}

func (r *fleetApplyReport) DeepCopyObject() runtime.Object { c := *r; return &c }

// forCluster is o for one cluster of the fleet: its own clients (through
// a server clock, as Complete builds them for one cluster) and namespace.
func (o *MigrateOptions) forCluster(c *fleet.Cluster, errOut io.Writer) (*MigrateOptions, error) {
	one := *o
	one.fleet = nil
	one.Namespace = c.Namespace
	one.ErrOut = errOut
	one.clock = kubeapi.NewServerClock()
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(one.clock.Wrap)
	one.restConfig = cfg
	var err error
	if one.Client, one.Metadata, one.Dynamic, err = newAuditClients(cfg, o.QPS, o.Burst); err != nil {
		return nil, err
	}
	return &one, nil
}

// plan is a fleet function: the cluster's rights, its guard, and the
// count by verdict of what --apply will change, as the single-cluster
// question counts it, remembering which Secrets it counted.
func (o *MigrateOptions) plan(ix *fleetapply.Index, out *prefixedOut) fleet.Func {
	return func(ctx context.Context, c *fleet.Cluster) (fleet.Result, error) {
		if c.UID == "" {
			return fleet.Result{}, errors.New("the uid of namespace kube-system cannot be read: it names the cluster's backup folder; grant get on namespaces/kube-system")
		}
		p := &clusterPlan{UID: c.UID, Change: map[string]int{}, Skip: map[string]int{}, allowed: map[string]bool{}}
		if e := ix.Entry(c.UID); e != nil && e.State == fleetapply.StateDone {
			p.Done = true
			return fleet.Result{Object: p}, nil
		}
		one, err := o.forCluster(c, out.writer(c.Context))
		if err != nil {
			return fleet.Result{}, err
		}
		p.one = one
		scan := one.scanOptions()
		if err := kubeapi.CheckAccess(ctx, one.Client, scan.Namespace, legacy.ApplyPermissions(o.Mode)); err != nil {
			return fleet.Result{}, err
		}
		v, err := guard.ServedVersion(ctx, one.Client.Discovery(), guard.Versions...)
		if err != nil {
			return fleet.Result{}, err
		}
		p.Guard = guardWatch
		if v != "" {
			p.Guard = guardPolicy
		}
		if now, err := one.serverNow(ctx); err == nil {
			scan.Now = now
		}
		scan.Metadata = one.Metadata // counted, not kept
		_, err = legacy.Scan(ctx, one.Client, scan, func(f *legacy.Finding) error {
			if result, _ := f.Eligible(o.Mode, o.include()); result == "" && f.InvalidSince == "" {
				p.Change[f.Verdict]++
				p.allowed[f.Namespace+"/"+f.Name] = true
			} else if result != "" {
				p.Skip[result]++
			} else {
				p.Skip[legacy.OutAlreadyInvalid]++
			}
			return nil
		})
		if err != nil {
			return fleet.Result{}, err
		}
		return fleet.Result{Object: p, Counts: p.Change}, nil
	}
}

// runFleetApply plans every cluster, asks once, then changes them in
// cluster waves.
func (o *MigrateOptions) runFleetApply(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := o.BackupDir
	if dir == "" {
		dir = "bound-token-fleet-backup-" + o.Now().UTC().Format("20060102T150405Z")
	}
	ix, err := fleetapply.OpenIndex(dir, o.Mode)
	if err != nil {
		return usageErrorf("--backup-dir: %v", err)
	}
	raw, names, fo, err := o.fleet.options(o.IOStreams, o.QPS, o.Burst)
	if err != nil {
		return err
	}
	out := &prefixedOut{w: o.ErrOut}
	r, err := fleet.Run(ctx, raw, names, "migrate", o.plan(ix, out), fo)
	if fo.Progress != nil {
		fmt.Fprintln(o.ErrOut)
	}
	if err != nil {
		return failedErrorf("interrupted while planning: %v; nothing changed", err)
	}
	targets, plans, unguarded := o.showPlan(r)
	if len(unguarded) > 0 && !o.clusterWaves.AllowUnguarded {
		return usageErrorf("%s serve%s no MutatingAdmissionPolicy, so no guard can be installed there; the only guard there would be a watch inside this run, which ends with it: a client refused there after the run stays refused until restore. Add --allow-unguarded-clusters to change such clusters anyway, or leave them out (--contexts); nothing changed",
			strings.Join(unguarded, ", "), map[bool]string{true: "", false: "s"}[len(unguarded) > 1])
	}
	sizes, _ := fleetapply.Sizes(len(targets)-countDone(plans), o.clusterWaves.Growth)
	fmt.Fprintf(o.ErrOut, "In cluster waves of %s cluster%s, each watched for %s; the run stops after a wave in which any cluster failed, saw a client present a token, or could not be reached.\n",
		joinInts(sizes), text.Plural(len(targets)), o.clusterWaves.Watch)
	if !o.Yes && !confirm(o.In, o.ErrOut, "Proceed?") {
		return failedErrorf("%w", kubeapi.ErrNotConfirmed)
	}
	guards := &watchGuards{}
	defer guards.stop()
	runCtx := ctx
	onWave := func(int, []fleetapply.Target, bool) {}
	if isTerminal(o.ErrOut) {
		onWave = func(n int, ts []fleetapply.Target, start bool) {
			if start {
				var cs []string
				for _, t := range ts {
					cs = append(cs, t.Context)
				}
				fmt.Fprintf(o.ErrOut, "cluster wave %d: %s; watching for %s\n", n, strings.Join(cs, ", "), o.clusterWaves.Watch)
			}
		}
	}
	res, err := fleetapply.Run(ctx, targets, fleetapply.Options{Growth: o.clusterWaves.Growth, Index: ix, Dir: dir, OnWave: onWave,
		Change: func(ctx context.Context, t fleetapply.Target) fleetapply.Outcome {
			return o.changeCluster(ctx, runCtx, plans[t.Context], dir, guards)
		}})
	abs, _ := filepath.Abs(dir)
	if res != nil {
		if perr := o.printFleetApply(res, abs); perr != nil {
			return perr
		}
	}
	if err != nil {
		return unfinished(err, abs)
	}
	if guards.count() > 0 {
		fmt.Fprintf(o.ErrOut, "warning: %s had no admission-policy guard; the watch that guarded %s ended with this run: a client refused there from now on stays refused until restore (kubectl bound-token restore --from %s --contexts CONTEXT), or run kubectl bound-token guard watch there while the change settles.\n",
			strings.Join(guards.contexts(), ", "), map[bool]string{true: "it", false: "them"}[guards.count() == 1], abs)
	}
	if res.Stopped != "" {
		return failedErrorf("%s; once its cause is found, go on with the same command and --backup-dir %s (clusters done are skipped); undo with kubectl bound-token restore --from %s", res.Stopped, abs, abs)
	}
	if res.Failed() {
		return silent(ExitFailed)
	}
	return nil
}

func countDone(plans map[string]*clusterPlan) int {
	n := 0
	for _, p := range plans {
		if p != nil && p.Done {
			n++
		}
	}
	return n
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	if len(s) == 0 {
		return "0"
	}
	return strings.Join(s, ", ")
}

// showPlan says, for every cluster, what will change (the question) and
// returns the targets in run order, each cluster's plan by context, and
// the contexts of the clusters that serve no admission policy.
func (o *MigrateOptions) showPlan(r *fleet.Report) ([]fleetapply.Target, map[string]*clusterPlan, []string) {
	var targets []fleetapply.Target
	plans := map[string]*clusterPlan{}
	var unguarded []string
	for _, s := range r.Clusters {
		if len(s.Aliases) > 0 {
			fmt.Fprintf(o.ErrOut, "context %s: the same cluster as %s, changed once\n", strings.Join(s.Aliases, ", "), s.Context)
		}
		t := fleetapply.Target{Context: s.Context, Server: s.Server}
		if s.Error != "" {
			t.Unreachable = s.Reason + ": " + s.Error
			fmt.Fprintf(o.ErrOut, "context %s (%s): cannot be planned (%s); its wave will stop the run\n", s.Context, s.Server, t.Unreachable)
			targets = append(targets, t)
			continue
		}
		p := s.Result.(*clusterPlan)
		t.UID = p.UID
		plans[s.Context] = p
		targets = append(targets, t)
		if p.Done {
			fmt.Fprintf(o.ErrOut, "context %s (cluster %s): done by an earlier run into this folder, skipped\n", s.Context, p.UID)
			continue
		}
		n := 0
		for _, c := range p.Change {
			n += c
		}
		guardLine := "guard: admission policy, installed first"
		if p.Guard != guardPolicy {
			guardLine = "guard: none served (MutatingAdmissionPolicy); a watch inside this run only"
			unguarded = append(unguarded, s.Context)
		}
		fmt.Fprintf(o.ErrOut, "context %s (cluster %s): --apply will %s %d Secret%s (by verdict: %s) after backing each up; left alone: %s; %s.\n",
			s.Context, p.UID, o.Mode, n, text.Plural(n), countsLine(p.Change), countsLine(p.Skip), guardLine)
	}
	return targets, plans, unguarded
}

// changeCluster changes one cluster: its guard first, then legacy.Apply
// into its own folder (admitting only the Secrets counted at the
// question), then a watch of what it invalidated (guard.Waves with one
// wave). runCtx outlives the wave: a watch guard runs until the run ends.
func (o *MigrateOptions) changeCluster(ctx, runCtx context.Context, p *clusterPlan, dir string, guards *watchGuards) fleetapply.Outcome {
	if p == nil || p.one == nil {
		return fleetapply.Outcome{State: fleetapply.Failed, Message: "not planned"}
	}
	one := p.one
	fail := func(state string, err error) fleetapply.Outcome {
		return fleetapply.Outcome{State: state, Message: strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	ns := one.scanOptions().Namespace
	if p.Guard == guardPolicy {
		gc, err := guard.NewCluster(one.restConfig)
		if err != nil {
			return fail(fleetapply.Failed, err)
		}
		probeNS := ns
		if probeNS == "" {
			probeNS = metav1.NamespaceDefault
		}
		ir, err := guard.Install(ctx, gc, guard.InstallOptions{Prove: guard.ProveOptions{Throwaway: true, Namespace: probeNS, Wait: guardProveWait}})
		if err != nil {
			return fail(stateOf(err), fmt.Errorf("guard install: %w", err))
		}
		if ir.Proof != nil && ir.Proof.State == guard.NotActing {
			return fail(fleetapply.Failed, fmt.Errorf("guard installed but not acting within %s: %s; nothing invalidated", guardProveWait, ir.Proof.Reason))
		}
	} else {
		guards.start(runCtx, one, ns)
	}
	now, err := one.serverNow(ctx)
	if err != nil {
		return fail(stateOf(err), err)
	}
	folderName, err := fleetapply.FolderName(p.UID)
	if err != nil {
		return fail(fleetapply.Failed, err)
	}
	// Not openBackup: its line would name the cluster's folder for
	// resume and undo, where the fleet folder is the one to give.
	folder, err := backup.Open(filepath.Join(dir, folderName), o.Mode, now.Format("2006-01-02"))
	if err != nil {
		return fail(fleetapply.Failed, err)
	}
	verb := "backing up to"
	if folder.Resumed() {
		verb = "resuming the run recorded in"
	}
	fmt.Fprintf(one.ErrOut, "%s %s\n", verb, folder.Dir)
	defer folder.Close()
	scan := one.scanOptions()
	scan.Now = now
	opts := one.applyOptions(now, newProgress(io.Discard))
	opts.Allow = func(ns, name string) bool { return p.allowed[ns+"/"+name] }
	w := &guard.Waves{
		Watch:    o.clusterWaves.Watch,
		Metadata: one.Metadata,
		Apply: func(ctx context.Context) (*legacy.ApplyResult, error) {
			return legacy.Apply(ctx, one.Client, folder, scan, opts)
		},
		Uses:   one.invalidUses,
		OnNote: func(s string) { fmt.Fprintln(one.ErrOut, "warning: "+s) },
	}
	wr, err := w.Run(ctx)
	oc := fleetapply.Outcome{State: fleetapply.Done}
	if wr != nil {
		oc.Counts = wr.Counts
		oc.Result = map[string]any{"backupDir": folder.Dir, "waves": wr.Waves}
	}
	switch {
	case err != nil:
		st := fail(stateOf(err), err)
		st.Counts, st.Result = oc.Counts, oc.Result
		return st
	case wr.Stopped != "" && len(wr.Waves) > 0 && wr.Waves[len(wr.Waves)-1].Result == guard.WaveFailed:
		oc.State, oc.Message = fleetapply.Failed, wr.Stopped
	case wr.Stopped != "":
		oc.State, oc.Message = fleetapply.ClientSeen, wr.Stopped
	case failedOutcomes(wr.Outcomes) != nil:
		oc.State, oc.Message = fleetapply.Failed, "some Secret failed or changed since its backup"
	}
	return oc
}

// stateOf is Unreachable for an error with no HTTP answer (refused,
// unresolvable, timed out), Failed otherwise.
func stateOf(err error) string {
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fleetapply.Unreachable
	}
	return fleetapply.Failed
}

// printFleetApply prints the run: a row per cluster (or -o json|yaml), then
// the summary on stderr.
func (o *MigrateOptions) printFleetApply(res *fleetapply.Result, abs string) error {
	if o.printer != nil {
		rep := &fleetApplyReport{TypeMeta: metav1.TypeMeta{APIVersion: kubeapi.OutputGroupVersion.String(), Kind: FleetApplyKind}, BackupDir: abs, Result: res}
		if err := o.printer.PrintObj(rep, o.Out); err != nil {
			return err
		}
	} else {
		tw := printers.GetNewTabWriter(o.Out)
		fmt.Fprintln(tw, "CONTEXT\tCLUSTER\tWAVE\tSTATE\tSECRETS\tMESSAGE")
		for _, c := range res.Clusters {
			wave := "-"
			if c.Wave > 0 {
				wave = fmt.Sprint(c.Wave)
			}
			counts := "-"
			if len(c.Counts) > 0 {
				counts = countsLine(c.Counts)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Context, orDash(c.UID), wave, c.State, counts, c.Message)
		}
		_ = tw.Flush()
	}
	states := map[string]int{}
	for _, c := range res.Clusters {
		states[c.State]++
	}
	fmt.Fprintf(o.ErrOut, "summary: %d cluster%s: %s\nbackup: %s (one folder per cluster, named by its kube-system uid; undo with: kubectl bound-token restore --from %s)\n",
		len(res.Clusters), text.Plural(len(res.Clusters)), countsLine(states), abs, abs)
	return nil
}

// watchGuards are the guard watches (guard.Watcher) this run started on
// clusters without admission policies: they run until the run ends.
type watchGuards struct {
	mu     sync.Mutex
	names  []string
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

func (g *watchGuards) start(ctx context.Context, one *MigrateOptions, ns string) {
	ctx, cancel := context.WithCancel(ctx)
	g.mu.Lock()
	g.cancel = append(g.cancel, cancel)
	g.mu.Unlock()
	w := &guard.Watcher{Metadata: one.Metadata, Client: one.Client, Namespace: ns, Now: one.Now,
		OnRestore: func(r guard.Restore) {
			fmt.Fprintf(one.ErrOut, "guard watch: %s/%s restored: its token was presented on %s\n", r.Namespace, r.Name, r.Day)
		},
		OnWarning: func(s string) { fmt.Fprintln(one.ErrOut, "warning: guard watch: "+s) },
	}
	g.mu.Lock()
	if pw, ok := one.ErrOut.(*prefixWriter); ok {
		g.names = append(g.names, pw.context)
	}
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if _, err := w.Run(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(one.ErrOut, "warning: guard watch ended: "+err.Error())
		}
	}()
}

func (g *watchGuards) stop() {
	g.mu.Lock()
	for _, c := range g.cancel {
		c()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *watchGuards) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.cancel)
}

func (g *watchGuards) contexts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.names...)
}

// prefixedOut hands out writers that prefix each line with its context,
// sharing one lock so that lines of clusters never interleave.
type prefixedOut struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixedOut) writer(context string) io.Writer {
	return &prefixWriter{out: p, context: context}
}

type prefixWriter struct {
	out     *prefixedOut
	context string
	buf     []byte
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.out.mu.Lock()
	defer w.out.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(w.out.w, "context %s: %s", w.context, w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}
