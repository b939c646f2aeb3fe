package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/auditlog"
	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

var (
	migrateLong = templates.LongDesc(`
		Find legacy ServiceAccount token Secrets, judge who still uses them the way the
		platform does, and move the cluster off them without breaking a live client.

		Without --apply, migrate changes nothing. For every Secret of type
		kubernetes.io/service-account-token it shows its service account, whether it was
		auto-generated (listed in the service account) or made by hand, the day its token
		was last used, whether it is already invalid, its age, the pods and workloads that
		read it, a verdict and why:

		  invalidate       valid, read by nothing, unused for --unused-for
		  delete           invalid for --unused-for, no use recorded since
		  used             used within --unused-for (last-used label or --audit-log)
		  in-use-failing   invalid, yet a client still presents it (on a Secret migrate
		                   invalidated: any change of last-used since, the same day
		                   included)
		  wait             invalid, but not yet for --unused-for
		  switch-workload  read by a pod or a workload's pod template
		  restored-on-use  migrate invalidated it, a client presented it, and a guard
		                   restored it: find that client first (--audit-log names the
		                   user agent and source address of its next request)
		  unknown          the evidence cannot tell: no use recorded, but use is
		                   tracked for less than --unused-for (or not at all)

		kube-apiserver records use only since the day in ConfigMap
		kube-system/kube-apiserver-legacy-service-account-token-tracking: before it, use
		is unknown, and so is the verdict. Readers are looked for in pods of every phase
		(through every reference the platform's own cleaner counts, imagePullSecrets
		included) and in the pod templates of Deployments, StatefulSets, DaemonSets,
		ReplicaSets, ReplicationControllers, Jobs and CronJobs, at any replica count.
		-o wide and -o json add when kube-controller-manager's own cleaner will
		invalidate and delete each Secret (--cleanup-period), or why it never will.
		--audit-log adds who used each token, from the apiserver's audit log.

		With --apply, only Secrets whose verdict is the mode's own (invalidate, or
		delete with --mode delete) are changed; the others are reported as skipped, with
		their reason, unless named with --include-used, --include-unknown or
		--include-mounted. On a terminal it asks first; in scripts it needs --yes. Each
		Secret (and each service account whose list will change) is first written to
		--backup-dir, read back and checked; only then is it invalidated (label
		kubernetes.io/legacy-token-invalid-since, which makes the apiserver reject the
		token) or deleted, with the backed-up resourceVersion as a precondition. An
		interrupted run is finished by running the same command again with the same
		--backup-dir. Undo with "kubectl bound-token restore".

		The invalidating request also writes annotations of this tool's own
		(bound-token.kubectl.io/...): the day, the purpose, and what the last-used label
		said before, so that a client refused on the very day of the invalidation still
		shows as in-use-failing. The day is the apiserver's, from the Date header of its
		answers: kube-apiserver writes the last-used label by its own clock, and only
		when the label says neither today nor tomorrow, so a label that already says
		today is cleared in the same request (its value kept in an annotation and the
		backup) for the next rejected use to be recorded.

		An invalidation for clean-up is guarded for --guard-for days (label
		bound-token.kubectl.io/guard-until): where a guard runs ("kubectl bound-token
		guard"), a client that still presents the token is refused once, then the Secret
		is restored and its verdict becomes restored-on-use. Whoever holds a guarded
		token can re-enable it by presenting it: a leaked or compromised token must be
		invalidated with --revoke, which is never guarded (and takes the guard off a
		Secret already invalidated for clean-up). A restored-on-use Secret is not
		invalidated again without --reinvalidate-restored; that state ends with a
		restore from the backup, with --reinvalidate-restored, or by removing the
		annotation bound-token.kubectl.io/restored-on-use by hand. --mode delete leaves
		a Secret alone while it is guarded (skipped-guarded), since deleting it would
		take the guard's chance to restore it away.

		With --wave-size N --wave-watch DURATION, --apply invalidates like a canary: N
		eligible Secrets (in the order of the list), then it watches them, and the
		earlier waves' Secrets, for DURATION. A client that presents one of their tokens
		shows as a guard's restore or as a new last-used label (written by kube-apiserver
		even on a refused request); a rise of kube-apiserver's
		serviceaccount_invalid_legacy_auto_token_uses_total on /metrics (when readable)
		with no such sign is a client refused on some other invalid token, which the
		counter cannot name. Either stops the run with exit 1 and a report: which Secret,
		the day, and where to find its client (the audit log). Otherwise the next wave
		follows, until no Secret is left. Without the guard installed the run says so:
		a presented Secret stays invalid until it is restored. The same command with the
		same --backup-dir goes on with the next wave (Secrets done by an earlier run are
		not counted in N). -o json adds each wave and what its watch saw ("waves").

		Exit codes: 0 all done (an audit's findings do not change it), 1 some Secret
		failed or changed since its backup, or the question was answered no, 2 bad flags,
		unreadable audit log or unusable backup folder: nothing changed.`)

	migrateExample = templates.Examples(`
		# Audit every namespace: who uses which legacy token, and the verdict
		kubectl bound-token migrate -A

		# The same, with the platform cleaner's forecast, and evidence from audit logs
		kubectl bound-token migrate -A -o wide --audit-log /var/log/kube-apiserver/audit.log --audit-log audit-1.log.gz

		# Check what an apply would do, server-side, without changing anything
		kubectl bound-token migrate -A --apply --dry-run=server

		# Invalidate the Secrets whose verdict is "invalidate", keeping a backup
		kubectl bound-token migrate -A --apply --backup-dir ./legacy-backup

		# Finish an interrupted run: same command, same folder
		kubectl bound-token migrate -A --apply --backup-dir ./legacy-backup --yes

		# Invalidate in waves of 10, each watched for 30 minutes: the run stops at the first
		# client that still presents a token of it (exit 1, naming the Secret); the same
		# command with the same folder goes on with the next wave
		kubectl bound-token migrate -A --apply --backup-dir ./legacy-backup --wave-size 10 --wave-watch 30m --yes

		# Revoke a leaked token now, even though a client uses it: never guarded
		kubectl bound-token migrate -n ci builder-token-abcde --apply --revoke --include-used --backup-dir ./revoked

		# Delete the Secrets invalid for 90 days with no use since
		kubectl bound-token migrate -n ci --apply --mode delete --yes

		# Two named Secrets only
		kubectl bound-token migrate -n ci builder-token-abcde deployer-token-fghij

		# Audit every cluster of the kubeconfig whose context starts with prod-, one report
		kubectl bound-token migrate -A --all-contexts --context-selector '^prod-' -o json`)
)

// MigrateOptions holds what `migrate` needs.
type MigrateOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Namespace      string
	AllNamespaces  bool
	Names          []string
	Selector       string
	UnusedFor      string
	CleanupPeriod  string
	AutoOnly       bool
	AuditLogs      []string
	IncludeUsed    bool
	IncludeUnknown bool
	IncludeMounted bool
	// Revoke, GuardFor and ReinvalidateRestored: what an invalidation is
	// for, how long its guard lasts, and whether restored-on-use Secrets
	// are invalidated again.
	Revoke               bool
	GuardFor             string
	ReinvalidateRestored bool
	// WaveSize and WaveWatch: invalidate in waves (migrate_waves.go).
	WaveSize  int
	WaveWatch time.Duration
	// wavesSet: either wave flag was given (waveSizeSet, waveWatchSet).
	wavesSet, waveSizeSet, waveWatchSet bool

	Apply     bool
	Yes       bool
	Mode      string
	BackupDir string
	writeFlags

	Client kubernetes.Interface
	// Metadata lists the audited Secrets for their metadata only; nil
	// (a test's fake Client alone) lists them whole.
	Metadata metadata.Interface
	Now      func() time.Time
	// clock follows the apiserver's Date headers through Client; nil with
	// a test's fake Client, whose day is then Now's.
	clock       *kubeapi.ServerClock
	restConfig  *rest.Config // the waves' guard check and /metrics; nil with a fake
	guardDays   int
	guardForSet bool
	// fleet: the audit over many contexts (--contexts, --all-contexts).
	fleet *fleetFlags

	threshold, period time.Duration
	printer           printers.ResourcePrinter
	seen              *auditEvidence
	explicitNamespace bool
	genericiooptions.IOStreams
}

func NewMigrateOptions(streams genericiooptions.IOStreams) *MigrateOptions {
	return &MigrateOptions{
		PrintFlags:    newResultPrintFlags(),
		Mode:          backup.ModeInvalidate,
		UnusedFor:     "90d",
		CleanupPeriod: "365d",
		GuardFor:      fmt.Sprintf("%dd", legacy.DefaultGuardDays),
		writeFlags:    defaultWriteFlags(),
		Now:           time.Now,
		IOStreams:     streams,
	}
}

func NewCmdMigrate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdMigrate(f, NewMigrateOptions(streams))
}

// newCmdMigrate binds the command to o; tests give o a fake Client first.
func newCmdMigrate(f cmdutil.Factory, o *MigrateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "migrate [NAME ...] [-n NAMESPACE | -A] [-l SELECTOR] [--unused-for 90d] [--audit-log FILE]... [--apply [--mode invalidate|delete] [--backup-dir DIR] [--yes]]",
		DisableFlagsInUseLine: true,
		Short:                 "Audit legacy token Secrets; with --apply, back up and invalidate or delete the provably unused ones",
		Long:                  migrateLong,
		Example:               migrateExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOptions(o, f, cmd, args)
		},
	}
	addPrintFlags(cmd, o.PrintFlags, "wide", "name")
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look at every namespace.")
	fl.StringVarP(&o.Selector, "selector", "l", "", "Only judge Secrets matching this label selector (readers are still looked for in the whole namespace).")
	fl.StringVar(&o.UnusedFor, "unused-for", o.UnusedFor, "The threshold: how long a token must be unused (or invalid) before the verdict is invalidate (or delete), e.g. 90d or 36h.")
	fl.StringVar(&o.CleanupPeriod, "cleanup-period", o.CleanupPeriod, "kube-controller-manager's --legacy-service-account-token-clean-up-period, for the cleaner's forecast (-o wide, -o json).")
	fl.BoolVar(&o.AutoOnly, "auto-only", false, "Only Secrets auto-generated for their service account (listed in its .secrets).")
	fl.StringArrayVar(&o.AuditLogs, "audit-log", nil, "kube-apiserver audit log (JSON lines, plain or gzip; - for stdin) to read evidence of use from; repeat for several files. A use in it within --unused-for makes the verdict used.")
	fl.BoolVar(&o.IncludeUsed, "include-used", false, "With --apply, also change Secrets whose token was used within --unused-for (or, invalid, is still presented): their clients fail.")
	fl.BoolVar(&o.IncludeUnknown, "include-unknown", false, "With --apply, also change Secrets whose use cannot be told (use not tracked long enough, readers not listable): a client nobody knows of may fail.")
	fl.BoolVar(&o.IncludeMounted, "include-mounted", false, "With --apply, also change Secrets that pods or workloads read: those pods lose access or fail to start.")
	fl.BoolVar(&o.Revoke, "revoke", false, "With --apply, invalidate to revoke a leaked or compromised token: never guarded, and a Secret already invalidated for clean-up loses its guard. Whoever holds a guarded token can re-enable it by presenting it, so a leaked token needs --revoke. The verdicts still decide: add --include-used for a token a client uses, --reinvalidate-restored for one a guard restored.")
	fl.StringVar(&o.GuardFor, "guard-for", o.GuardFor, "With --apply, how many days after its invalidation for clean-up a guard restores a Secret whose token is presented (label bound-token.kubectl.io/guard-until), e.g. 90d. The default, a quarter, covers a quarterly job and is --unused-for's default, the wait before the delete verdict: a Secret stays guarded until it may be deleted.")
	fl.BoolVar(&o.ReinvalidateRestored, "reinvalidate-restored", false, "With --apply, also invalidate Secrets whose verdict is restored-on-use (a guard restored them when a client presented them): that client fails again.")
	fl.BoolVar(&o.Apply, "apply", false, "Back up, then invalidate or delete the Secrets whose verdict allows it.")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "With --apply, do not ask for confirmation (needed when stdin is not a terminal).")
	fl.StringVar(&o.Mode, "mode", o.Mode, "What --apply does: invalidate (label; reversible by removing it) or delete.")
	fl.StringVar(&o.BackupDir, "backup-dir", "", "Folder for the backup (created 0700). Default: ./bound-token-backup-TIMESTAMP. An existing folder from an interrupted run is resumed.")
	addWriteFlags(cmd, &o.writeFlags, "Secrets", `With --apply: "client" only prints what would change; "server" sends every change as a server-side dry run. No backup is written.`)
	addWaveFlags(cmd, o)
	o.fleet = addFleetFlags(f, cmd)
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{backup.ModeInvalidate, backup.ModeDelete}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("backup-dir", completeBackupDirs)
	_ = cmd.RegisterFlagCompletionFunc("audit-log", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveDefault
	})
	return cmd
}

// Complete reads the flags first (-o, durations, --dry-run), so that a
// typo fails before the kubeconfig is read, then builds the client.
func (o *MigrateOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Names = args
	var err error
	if o.printer, err = toPrinter(o.PrintFlags, "wide", "name"); err != nil {
		return err
	}
	if err := o.writeFlags.complete(cmd); err != nil {
		return usageErrorf("%w", err)
	}
	if o.threshold, err = legacy.ParseAge(o.UnusedFor); err != nil {
		return usageErrorf("--unused-for: %v", err)
	}
	if o.period, err = legacy.ParseAge(o.CleanupPeriod); err != nil {
		return usageErrorf("--cleanup-period %q: use a positive duration such as 365d", o.CleanupPeriod)
	}
	o.guardForSet = cmd.Flags().Changed("guard-for")
	o.completeWaves(cmd)
	if g, err := legacy.ParseAge(o.GuardFor); err != nil || g < 24*time.Hour || g%(24*time.Hour) != 0 {
		return usageErrorf("--guard-for %q: use a whole number of days, at least 1d, such as 90d (the guard day is a day)", o.GuardFor)
	} else {
		o.guardDays = int(g / (24 * time.Hour))
	}
	// --apply and --audit-log are refused over many clusters: changing
	// many at once needs its own design, and an audit log belongs to one.
	if done, err := o.fleet.complete(f, cmd, map[string]string{
		"apply":     "changing many clusters at once is not offered; run --apply with one --context at a time",
		"audit-log": "an audit log belongs to one cluster; use --context",
	}); done || err != nil {
		return err
	}
	if o.Namespace, o.explicitNamespace, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Client != nil {
		return nil // a test's fake, with its Metadata or none
	}
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return usageErrorf("%w", err)
	}
	o.clock = kubeapi.NewServerClock()
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(o.clock.Wrap)
	o.restConfig = cfg
	if o.Client, o.Metadata, err = newAuditClients(cfg, o.QPS, o.Burst); err != nil {
		return usageErrorf("%w", err)
	}
	return nil
}

// newAuditClients are the typed client and the metadata-only one an audit
// lists Secrets with (legacy.ScanOptions.Metadata), at qps and burst,
// sharing one HTTP client and so one connection.
func newAuditClients(cfg *rest.Config, qps float32, burst int) (kubernetes.Interface, metadata.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, nil, err
	}
	md, err := metadata.NewForConfigAndClient(cfg, hc)
	return cs, md, err
}

// newThrottledClient is the one way a command raises client-go's default
// 5 requests per second, for commands that send many.
func newThrottledClient(cfg *rest.Config, qps float32, burst int) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	return kubernetes.NewForConfig(cfg)
}

// client is preset (a test's fake) or a client of f's cluster at --qps
// and --burst; its errors are usage errors.
func (t *throttleFlags) client(f cmdutil.Factory, preset kubernetes.Interface) (kubernetes.Interface, error) {
	if preset != nil {
		return preset, nil
	}
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	c, err := newThrottledClient(cfg, t.QPS, t.Burst)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return c, nil
}

// throttleFlags are shared by the commands that change many objects.
type throttleFlags struct {
	Concurrency int
	QPS         float32
	Burst       int
}

func defaultThrottleFlags() throttleFlags { return throttleFlags{Concurrency: 8, QPS: 50, Burst: 100} }

// addThrottleFlags binds --concurrency (of what, "Secrets" or
// "workloads"), --qps and --burst.
func addThrottleFlags(cmd *cobra.Command, t *throttleFlags, what string) {
	fl := cmd.Flags()
	fl.IntVar(&t.Concurrency, "concurrency", t.Concurrency, "How many "+what+" to change at once.")
	fl.Float32Var(&t.QPS, "qps", t.QPS, "Most requests per second sent to the apiserver.")
	fl.IntVar(&t.Burst, "burst", t.Burst, "Most requests sent in a burst above --qps.")
}

func (t *throttleFlags) validate() error {
	if t.Concurrency < 1 || t.QPS <= 0 || t.Burst < 1 {
		return fmt.Errorf("--concurrency, --qps and --burst must be positive")
	}
	return nil
}

// writeFlags are migrate's, restore's and switch's: throttling and --dry-run.
type writeFlags struct {
	// DryRun is read from kubectl's --dry-run (cmdutil.AddDryRunFlag) in
	// complete.
	DryRun cmdutil.DryRunStrategy
	throttleFlags
}

func defaultWriteFlags() writeFlags {
	return writeFlags{DryRun: cmdutil.DryRunNone, throttleFlags: defaultThrottleFlags()}
}

func addWriteFlags(cmd *cobra.Command, w *writeFlags, what, dryRunHelp string) {
	fl := cmd.Flags()
	// kubectl's --dry-run (k8s.io/kubectl/pkg/cmd/util AddDryRunFlag and
	// GetDryRunStrategy): none|client|server, a bare --dry-run is client.
	cmdutil.AddDryRunFlag(cmd)
	fl.Lookup("dry-run").Usage = `Must be "none", "server", or "client". ` + dryRunHelp
	addThrottleFlags(cmd, &w.throttleFlags, what)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions(kubeapi.DryRunNames, cobra.ShellCompDirectiveNoFileComp))
}

// complete reads --dry-run as kubectl does.
func (w *writeFlags) complete(cmd *cobra.Command) error {
	var err error
	w.DryRun, err = cmdutil.GetDryRunStrategy(cmd)
	return err
}

func (w *writeFlags) validate() error { return w.throttleFlags.validate() }

func (o *MigrateOptions) Validate() error {
	if o.threshold < 24*time.Hour {
		return fmt.Errorf("--unused-for %s: use at least 1d (the last-used label holds a day)", o.UnusedFor)
	}
	if o.period <= 0 {
		return fmt.Errorf("--cleanup-period %q: use a positive duration such as 365d", o.CleanupPeriod)
	}
	if o.Mode != backup.ModeInvalidate && o.Mode != backup.ModeDelete {
		return fmt.Errorf("--mode %q: use invalidate or delete", o.Mode)
	}
	if len(o.Names) > 0 && o.AllNamespaces {
		return fmt.Errorf("Secret names need one namespace: drop -A and use -n NAMESPACE")
	}
	if err := o.writeFlags.validate(); err != nil {
		return err
	}
	if !o.Apply && (o.DryRun != cmdutil.DryRunNone || o.BackupDir != "" || o.IncludeMounted || o.IncludeUsed || o.IncludeUnknown || o.Yes) {
		return fmt.Errorf("--dry-run, --backup-dir, --yes and --include-* only make sense with --apply")
	}
	if o.Apply && o.DryRun != cmdutil.DryRunNone && o.BackupDir != "" {
		return fmt.Errorf("a dry run writes no backup: drop --backup-dir")
	}
	if (!o.Apply || o.Mode != backup.ModeInvalidate) && (o.Revoke || o.guardForSet || o.ReinvalidateRestored) {
		return fmt.Errorf("--revoke, --guard-for and --reinvalidate-restored only make sense with --apply --mode invalidate")
	}
	if o.Revoke && o.guardForSet {
		return fmt.Errorf("--revoke writes no guard: drop --guard-for")
	}
	return o.validateWaves()
}

func (o *MigrateOptions) format() string { return outputFormat(o.PrintFlags) }

func (o *MigrateOptions) scanOptions() legacy.ScanOptions {
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	so := legacy.ScanOptions{Namespace: ns, Names: o.Names, Selector: o.Selector, Threshold: o.threshold,
		CleanupPeriod: o.period, AutoOnly: o.AutoOnly, Now: o.Now().UTC()}
	if o.seen != nil {
		so.Seen = o.seen.Use
	}
	return so
}

// auditScanOptions are scanOptions for a run that only reads: the Secrets
// are listed for their metadata only. legacy.Apply gets scanOptions, whose
// whole Secrets go into the backup.
func (o *MigrateOptions) auditScanOptions() legacy.ScanOptions {
	so := o.scanOptions()
	so.Metadata = o.Metadata
	return so
}

func (o *MigrateOptions) include() legacy.Include {
	return legacy.Include{Used: o.IncludeUsed, Unknown: o.IncludeUnknown, Read: o.IncludeMounted, Restored: o.ReinvalidateRestored}
}

func (o *MigrateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.fleet.enabled() {
		return o.runFleet(ctx)
	}
	if o.Apply && o.DryRun == cmdutil.DryRunNone && !o.Yes && !isTerminal(o.In) {
		return usageErrorf("--apply changes the cluster: add --yes to confirm (stdin is not a terminal to ask on)")
	}
	if len(o.AuditLogs) > 0 {
		// Read whole before anything is judged: evidence that is cut
		// short could call a used token unused.
		res, err := auditlog.ReadFiles(ctx, o.AuditLogs, o.In)
		if err != nil {
			return usageErrorf("audit log: %v; nothing was judged or changed", err)
		}
		o.seen = &auditEvidence{res}
	}
	if o.Apply {
		return o.runApply(ctx)
	}
	if o.format() == "json" {
		return o.streamAuditJSON(ctx)
	}
	report, err := o.audit(ctx)
	if err != nil {
		return usageErrorf("%w", err)
	}
	return o.printAudit(report)
}

// audit judges the selected Secrets into a report.
func (o *MigrateOptions) audit(ctx context.Context) (*legacy.Report, error) {
	report := legacy.NewReport()
	info, err := legacy.Scan(ctx, o.Client, o.auditScanOptions(), func(f *legacy.Finding) error {
		// The printed row is all that is kept: holding each listed Secret
		// (its data included) would put the whole list in memory.
		f.Secret = nil
		report.Items = append(report.Items, f)
		report.Summary.Add(f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	report.Summary.Info = info
	return report, nil
}

// streamAuditJSON writes the same document as cli-runtime's JSON printer
// (json.MarshalIndent with four spaces, a final newline) but encodes each
// Secret as it is judged and keeps only its bytes: the printer would hold
// every Finding, deep-copy the whole report (OmitManagedFieldsPrinter
// copies list-shaped objects) and indent it at the end, which cost a
// quarter of an audit's CPU over 20,000 Secrets. Nothing is written until
// the scan succeeded, so a failed audit prints no partial document.
func (o *MigrateOptions) streamAuditJSON(ctx context.Context) error {
	r := legacy.NewReport()
	var items bytes.Buffer
	info, err := legacy.Scan(ctx, o.Client, o.auditScanOptions(), func(f *legacy.Finding) error {
		f.Secret = nil
		r.Summary.Add(f)
		b, err := json.MarshalIndent(f, "        ", "    ")
		if err != nil {
			return err
		}
		if items.Len() > 0 {
			items.WriteString(",\n")
		}
		items.WriteString("        ")
		items.Write(b)
		return nil
	})
	if err != nil {
		return usageErrorf("%w", err)
	}
	r.Summary.Info = info
	head, err := json.Marshal(r.TypeMeta)
	if err != nil {
		return err
	}
	var tm map[string]string
	_ = json.Unmarshal(head, &tm)
	sum, err := json.MarshalIndent(r.Summary, "    ", "    ")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(o.Out, 1<<16)
	fmt.Fprintf(w, "{\n    \"kind\": %q,\n    \"apiVersion\": %q,\n", tm["kind"], tm["apiVersion"])
	if items.Len() == 0 {
		w.WriteString("    \"items\": [],\n")
	} else {
		w.WriteString("    \"items\": [\n")
		w.Write(items.Bytes())
		w.WriteString("\n    ],\n")
	}
	w.WriteString("    \"summary\": ")
	w.Write(sum)
	w.WriteString("\n}\n")
	if err := w.Flush(); err != nil {
		return err
	}
	o.printBasis(info)
	return nil
}

func (o *MigrateOptions) printAudit(r *legacy.Report) error {
	switch f := o.format(); {
	case f == "name":
		for _, it := range r.Items {
			fmt.Fprintf(o.Out, "secret/%s\n", it.Name)
		}
		return nil
	case o.printer != nil:
		return o.printer.PrintObj(r, o.Out)
	}
	if len(r.Items) == 0 {
		fmt.Fprintln(o.ErrOut, "No legacy token Secrets found.")
		o.printBasis(r.Summary.Info)
		return nil
	}
	wide := o.format() == "wide"
	now := o.Now()
	w := printers.GetNewTabWriter(o.Out)
	fmt.Fprintln(w, auditHeader(wide))
	for _, it := range r.Items {
		writeAuditRow(w, it, now, wide)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	s := r.Summary
	fmt.Fprintf(o.Out, "\n%d legacy token Secret%s: %s; %d read by pods or workloads, %d already invalid.\n",
		s.Total, text.Plural(s.Total), countsLine(s.Verdicts), s.Read, s.Invalid)
	o.printBasis(s.Info)
	return nil
}

func auditHeader(wide bool) string {
	head := "NAMESPACE\tNAME\tSERVICEACCOUNT\tORIGIN\tLAST-USED\tINVALID-SINCE\tAGE\tREAD-BY\tVERDICT\tREASON"
	if wide {
		head += "\tCLEANER-INVALIDATES\tCLEANER-DELETES"
	}
	return head
}

// writeAuditRow writes one line of the audit table (auditHeader).
func writeAuditRow(w io.Writer, it *legacy.Finding, now time.Time, wide bool) {
	sa := it.ServiceAccount
	if it.ServiceAccountState != legacy.SAOK {
		sa += " (" + it.ServiceAccountState + ")"
	}
	origin := "manual"
	if it.AutoGenerated {
		origin = "auto"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", it.Namespace, it.Name, sa, origin,
		orNone(it.LastUsed), orNone(it.InvalidSince), duration.HumanDuration(now.Sub(it.Created.Time)),
		readers(it.Readers), it.Verdict, it.Reason)
	if wide {
		c := it.Cleaner
		inv, del := orNone(c.Invalidate), orNone(c.Delete)
		if c.Never != "" {
			inv, del = "never: "+c.Never, "never"
		}
		if c.Warning != "" {
			inv += " (" + c.Warning + ")"
		}
		fmt.Fprintf(w, "\t%s\t%s", inv, del)
	}
	fmt.Fprintln(w)
}

// printBasis says once what every verdict rests on, on stderr.
func (o *MigrateOptions) printBasis(info *legacy.ScanInfo) {
	if info == nil {
		return
	}
	if t := info.Tracking; t.Known() {
		fmt.Fprintf(o.ErrOut, "Use of legacy tokens is tracked since %s (ConfigMap %s/%s); a missing last-used label proves no use only from %s.\n",
			t.Since.Format("2006-01-02"), legacy.TrackingNamespace, legacy.TrackingConfigMap, t.KnownSince().Format("2006-01-02"))
	} else {
		fmt.Fprintf(o.ErrOut, "Use of legacy tokens is unknown: %s. Verdicts that need it are unknown.\n", t.Unknown)
	}
	for _, w := range info.Warnings {
		fmt.Fprintf(o.ErrOut, "warning: %s\n", w)
	}
	if len(info.Invisible) > 0 {
		fmt.Fprintf(o.ErrOut, "warning: this cluster serves %s, whose pod templates are not read: their readers are invisible until they run pods.\n", strings.Join(info.Invisible, ", "))
	}
	if o.seen != nil {
		fmt.Fprintln(o.ErrOut, o.seen.Describe())
	}
	if o.format() == "wide" {
		fmt.Fprintf(o.ErrOut, "Cleaner forecast: kube-controller-manager's legacy token cleaner, with a %d-day period, only if it runs (on by default since 1.29/1.30, can be disabled, not visible through the API); days are ±1 (it runs every 24 h).\n", info.CleanupPeriodDays)
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func readers(rs []legacy.Reader) string {
	if len(rs) == 0 {
		return "<none>"
	}
	s := rs[0].String()
	if len(rs) > 1 {
		s += fmt.Sprintf(" +%d", len(rs)-1)
	}
	return s
}

func (o *MigrateOptions) runApply(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	scan := o.scanOptions()
	if err := kubeapi.CheckAccess(ctx, o.Client, scan.Namespace, legacy.ApplyPermissions(o.Mode)); err != nil {
		return usageErrorf("%w", err)
	}
	// The day of the run is the apiserver's (see kubeapi.ServerClock); the
	// access check above has just read it.
	now, err := o.serverNow(ctx)
	if err != nil {
		return usageErrorf("%w", err)
	}
	scan.Now = now
	if o.DryRun == cmdutil.DryRunNone && !o.Yes {
		ok, err := o.ask(ctx, scan)
		if err != nil {
			return err
		}
		if !ok {
			return failedErrorf("%w", kubeapi.ErrNotConfirmed)
		}
	}
	var folder *backup.Folder
	if o.DryRun == cmdutil.DryRunNone {
		var err error
		if folder, err = openBackup(o.ErrOut, o.BackupDir, "bound-token-backup-", o.Mode, now); err != nil {
			return err
		}
		defer folder.Close()
	}
	// Each run writes its own day: a patch whose record was lost is
	// recognised by the marks it wrote with it, not by the folder's day.
	progress := newProgress(o.ErrOut)
	opts := legacy.ApplyOptions{
		Mode:      o.Mode,
		Date:      now.Format("2006-01-02"),
		Revoke:    o.Revoke,
		GuardDays: o.guardDays,
		DryRun:    o.DryRun,
		Include:   o.include(),
		Workers:   o.Concurrency,
		Done:      progress.step,
	}
	if o.WaveSize > 0 {
		return o.runWaves(ctx, folder, scan, opts, progress)
	}
	if o.Mode == backup.ModeInvalidate && !o.Revoke && o.DryRun == cmdutil.DryRunNone {
		o.unguardedNotice(ctx)
	}
	res, err := legacy.Apply(ctx, o.Client, folder, scan, opts)
	progress.end()
	if res == nil {
		var pe *legacy.PurposeError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%w (--revoke, --guard-for)", err)
		}
		return usageErrorf("%w", err)
	}
	if perr := o.printOutcomes(res.Outcomes, res.Counts, folder); perr != nil {
		return perr
	}
	o.printBasis(res.Info)
	if err != nil {
		hint := ""
		if folder != nil {
			hint = fmt.Sprintf("; run the same command again with --backup-dir %s to finish", folder.Dir)
		}
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		return failedErrorf("%v%s", err, hint)
	}
	for _, oc := range res.Outcomes {
		if oc.Failed() {
			return silent(ExitFailed)
		}
	}
	return nil
}

// serverNow is the apiserver's time, read from the Date headers of its
// answers (asking for its version if none was seen yet); this machine's
// clock, with a warning, when its answers carry none (a proxy may strip
// it), and Now with a test's fake client.
func (o *MigrateOptions) serverNow(ctx context.Context) (time.Time, error) {
	if o.clock == nil {
		return o.Now().UTC(), nil
	}
	if t, ok := o.clock.Now(); ok {
		return t, nil
	}
	if _, err := o.Client.Discovery().ServerVersion(); err != nil {
		return time.Time{}, fmt.Errorf("read the apiserver's version (for its clock): %w", err)
	}
	if t, ok := o.clock.Now(); ok {
		return t, nil
	}
	fmt.Fprintln(o.ErrOut, "warning: the apiserver's answers carry no Date header; the invalidation day is this machine's (UTC), which may differ from the one kube-apiserver writes into last-used labels")
	return o.Now().UTC(), nil
}

// ask shows what --apply will change, by verdict, and asks on the
// terminal.
func (o *MigrateOptions) ask(ctx context.Context, scan legacy.ScanOptions) (bool, error) {
	change, skip := map[string]int{}, map[string]int{}
	scan.Metadata = o.Metadata // counted, not kept
	info, err := legacy.Scan(ctx, o.Client, scan, func(f *legacy.Finding) error {
		if f.Unguards(o.Mode, o.Revoke) {
			change["guarded-to-revoke"]++
		} else if result, _ := f.Eligible(o.Mode, o.include()); result == "" {
			change[f.Verdict]++
		} else {
			skip[result]++
		}
		return nil
	})
	if err != nil {
		return false, usageErrorf("%w", err)
	}
	o.printBasis(info)
	n := 0
	for _, c := range change {
		n += c
	}
	fmt.Fprintf(o.ErrOut, "--apply will %s %d Secret%s (by verdict: %s) after backing each up; left alone: %s.\n",
		o.Mode, n, text.Plural(n), countsLine(change), countsLine(skip))
	if o.WaveSize > 0 && n > 0 {
		fmt.Fprintf(o.ErrOut, "In waves of %d, each watched for %s; the run stops at the first client seen.\n", o.WaveSize, o.WaveWatch)
	}
	if n == 0 {
		return true, nil
	}
	return confirm(o.In, o.ErrOut, "Proceed?"), nil
}

// outcomeList is the printed form of an apply or a restore.
type outcomeList struct {
	metav1.TypeMeta `json:",inline"`
	BackupDir       string           `json:"backupDir,omitempty"`
	Items           []backup.Outcome `json:"items"`
	Counts          map[string]int   `json:"counts"`
	// Waves: migrate --wave-size, each wave and what its watch saw.
	Waves []guard.Wave `json:"waves,omitempty"`
}

func (l *outcomeList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = append([]backup.Outcome(nil), l.Items...)
	c.Waves = append([]guard.Wave(nil), l.Waves...)
	c.Counts = map[string]int{}
	for k, v := range l.Counts {
		c.Counts[k] = v
	}
	return &c
}

// printOutcomeList prints an apply's or a restore's outcomes: with -o
// name, like kubectl, the objects this run changed (or would change); with
// another -o, as an outcomeList of kind; else as a table.
func printOutcomeList(printer printers.ResourcePrinter, format string, out io.Writer, kind, dir string, items []backup.Outcome, counts map[string]int, waves ...guard.Wave) error {
	switch {
	case format == "name":
		for _, it := range items {
			switch it.Result {
			case legacy.OutInvalidated, legacy.OutDeleted, backup.OutDeletedRefLeft, backup.OutWouldChange, legacy.OutRecreated, legacy.OutLabelRemoved, legacy.OutMarksRestored:
				if it.Kind == "" {
					fmt.Fprintf(out, "secret/%s\n", it.Name)
				}
			}
		}
		return nil
	case printer != nil:
		l := &outcomeList{TypeMeta: metav1.TypeMeta{APIVersion: resultGroupVersion.String(), Kind: kind}, BackupDir: dir, Items: items, Counts: counts, Waves: waves}
		return printer.PrintObj(l, out)
	}
	if len(items) > 0 {
		w := printers.GetNewTabWriter(out)
		fmt.Fprintln(w, "NAMESPACE\tNAME\tRESULT\tDETAIL")
		for _, it := range items {
			name := it.Name
			if it.Kind != "" {
				name = strings.ToLower(it.Kind) + "/" + it.Name
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", it.Namespace, name, it.Result, it.Message)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// countsLine reads "2 invalidate, 1 used", sorted; "nothing selected"
// when empty.
func countsLine(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "nothing selected"
	}
	return strings.Join(parts, ", ")
}

func (o *MigrateOptions) printOutcomes(items []backup.Outcome, counts map[string]int, folder *backup.Folder, waves ...guard.Wave) error {
	dir := ""
	if folder != nil {
		dir = folder.Dir
	}
	if counts == nil {
		counts = map[string]int{}
	}
	if err := printOutcomeList(o.printer, o.format(), o.Out, "LegacyTokenMigration", dir, items, counts, waves...); err != nil {
		return err
	}
	line := "summary: " + countsLine(counts)
	if dir != "" {
		abs, _ := filepath.Abs(dir)
		line += fmt.Sprintf("\nbackup: %s (undo with: kubectl bound-token restore --from %s)", abs, abs)
	}
	fmt.Fprintln(o.ErrOut, line)
	return nil
}

// progress draws a one-line counter on stderr, only on a terminal.
type progress struct {
	w      io.Writer
	on     bool
	n      int
	counts map[string]int
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, on: isTerminal(w), counts: map[string]int{}}
}

func (p *progress) step(o backup.Outcome) {
	if !p.on {
		return
	}
	p.n++
	p.counts[o.Result]++
	fmt.Fprintf(p.w, "\r\033[K%d done: %s", p.n, countsLine(p.counts))
}

func (p *progress) end() {
	if p.on && p.n > 0 {
		fmt.Fprintln(p.w)
	}
}

// completeBackupDirs offers folders that hold a backup index, then any
// folder.
func completeBackupDirs(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	matches, _ := filepath.Glob(toComplete + "*")
	var out []string
	for _, m := range matches {
		if fi, err := os.Stat(filepath.Join(m, backup.IndexFile)); err == nil && fi.Mode().IsRegular() {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// auditEvidence is what --audit-log found, as the judgement reads it.
type auditEvidence struct{ res *auditlog.Result }

// Use is the evidence of one Secret, or nil.
func (a *auditEvidence) Use(ns, name string) *legacy.SeenUse {
	ev := a.res.Secrets[ns+"/"+name]
	if ev == nil || ev.Requests == 0 {
		return nil
	}
	values := func(c *auditlog.Counts) []string {
		top, more, _ := c.Top(5)
		out := make([]string, 0, len(top)+1)
		for _, t := range top {
			out = append(out, fmt.Sprintf("%s (%d)", t.Value, t.Requests))
		}
		if more > 0 {
			out = append(out, fmt.Sprintf("and %d more", more))
		}
		return out
	}
	return &legacy.SeenUse{Requests: ev.Requests, Rejected: ev.Rejected, FirstSeen: ev.FirstSeen, LastSeen: ev.LastSeen,
		UserAgents: values(&ev.UserAgents), SourceIPs: values(&ev.SourceIPs), Verbs: values(&ev.Verbs), Resources: values(&ev.Resources)}
}

// Describe says once what the logs cover, and what they cannot show.
func (a *auditEvidence) Describe() string {
	r := a.res
	w := "no event"
	if !r.Window.From.IsZero() {
		w = r.Window.From.UTC().Format(time.RFC3339) + " to " + r.Window.To.UTC().Format(time.RFC3339)
	}
	s := fmt.Sprintf("Audit log (%s): %d events from %s, %d Secret%s with legacy-token requests", strings.Join(r.Files, ", "), r.Events, w, len(r.Secrets), text.Plural(len(r.Secrets)))
	if r.Unparseable > 0 || r.Oversized > 0 {
		s += fmt.Sprintf("; %d unparseable and %d oversized line(s) skipped", r.Unparseable, r.Oversized)
	}
	return s + ". A log covers its window and one apiserver instance, and uses checked through TokenReview leave no trace in it: no entry never proves a token unused."
}

// openBackup opens (or resumes) the backup folder of a run that changes
// the cluster, dir or PREFIX-TIMESTAMP, and says where it is before any
// change, so that a killed run can be resumed and undone.
func openBackup(errOut io.Writer, dir, prefix, mode string, now time.Time) (*backup.Folder, error) {
	if dir == "" {
		dir = prefix + now.Format("20060102T150405Z")
	}
	b, err := backup.Open(dir, mode, now.Format("2006-01-02"))
	if err != nil {
		var de *backup.DirError
		switch {
		case errors.As(err, &de) && de.Mode != "" && de.Mode != backup.ModeSwitch:
			err = fmt.Errorf("%w; resume it with --mode %s or choose another with --backup-dir", err, de.Mode)
		case errors.As(err, &de):
			err = fmt.Errorf("%w; choose another with --backup-dir", err)
		}
		return nil, usageErrorf("%w", err)
	}
	verb := "backing up to"
	if b.Resumed() {
		verb = "resuming the run recorded in"
	}
	fmt.Fprintf(errOut, "%s %s (to resume or undo: --backup-dir %s / kubectl bound-token restore --from %s)\n", verb, dir, dir, dir)
	return b, nil
}
