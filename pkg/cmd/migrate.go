package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/openreports/reports-api/pkg/client/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/auditlog"
	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/openreports"
)

var (
	migrateLong = templates.LongDesc(`
		Find legacy ServiceAccount token Secrets, judge who still uses them the way the
		platform does, and move the cluster off them without breaking a live client.

		Without --apply, migrate changes nothing. For every Secret of type
		kubernetes.io/service-account-token it shows its service account, whether it was
		auto-generated (listed in the service account) or made by hand, the day its token
		was last used, whether it is already invalid, its age, the pods and workloads that
		read it (built-in kinds, and every other API whose schema in /openapi/v3 holds pod
		specs, such as Argo Rollouts or Knative; one you may not list makes the namespace's
		Secrets unknown), a verdict and why:

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

		With --contexts or --all-contexts, --apply changes clusters in cluster waves
		(named apart from the Secret waves above, which it refuses): every cluster is
		planned first and one question shows, for each, what will change by verdict and
		how it is guarded; a cluster never changes more than its question counted
		(others are skipped-not-confirmed). The first wave is one cluster, each next one
		--cluster-wave-growth times larger; each cluster is changed into its own folder
		under --backup-dir, named by the uid of its kube-system namespace (with
		fleet-index.json at the top), then watched for --cluster-wave-watch. The guard is
		installed first where MutatingAdmissionPolicy is served; elsewhere only a guard
		watch inside this run guards the cluster, and it ends with the run, so such
		clusters need --allow-unguarded-clusters. A wave with a cluster that failed, saw a
		client present a token, or could not be reached is the last (exit 1). The same
		command with the same folder goes on, skipping the clusters done; "kubectl
		bound-token restore --from" the folder undoes every cluster. --mode delete,
		--revoke and --dry-run are not offered over many clusters.

		The audit is written Secret by Secret as each is judged (the table, -o wide,
		name, json and yaml; the table's columns are aligned 500 rows at a time and only
		widen), so memory does not grow with the Secrets; the summary comes last. An
		audit that fails after its first Secret was written leaves that output
		incomplete: a line on stderr says so, and it exits 1.

		With --report (not with --apply), the audit is also written into the cluster as
		OpenReports objects, which Policy Reporter and other dashboards read: per namespace,
		Reports bound-token-migrate-0, -1, ... (1,000 results each, one per Secret: the
		verdict as rule, fail for invalidate and delete, warn for used, switch-workload,
		in-use-failing and restored-on-use, pass for wait, skip for unknown), and the
		ClusterReport bound-token-migrate with what the verdicts rest on. A rerun replaces
		them; with -l, --auto-only or Secret names it replaces only the results of the
		Secrets it judged. It first checks that the CRDs are served and that it may write
		them (nothing is written otherwise, exit 2), then says on stderr what it wrote.

		Exit codes: 0 all done (an audit's findings do not change it), 1 some Secret
		failed or changed since its backup, an audit's output is incomplete, the
		question was answered no, or (over many clusters) a cluster is not done or a
		cluster wave stopped the run, 2 bad flags, unreadable audit log, unusable backup
		folder, unguarded clusters without --allow-unguarded-clusters, or an audit that
		failed before writing anything: nothing changed.`)

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

		# Publish the audit in the cluster for Policy Reporter (OpenReports Reports and ClusterReport)
		kubectl bound-token migrate -A --report

		# The same in every cluster of the kubeconfig
		kubectl bound-token migrate -A --all-contexts --report

		# Two named Secrets only
		kubectl bound-token migrate -n ci builder-token-abcde deployer-token-fghij

		# Audit every cluster of the kubeconfig whose context starts with prod-, one report
		kubectl bound-token migrate -A --all-contexts --context-selector '^prod-' -o json

		# Invalidate over every prod- cluster in cluster waves of 1, 2, 4, ... each watched
		# for 30 minutes; the same command with the same folder goes on after a stop
		kubectl bound-token migrate -A --all-contexts --context-selector '^prod-' --apply \
		  --backup-dir ./fleet-backup --cluster-wave-growth 2 --cluster-wave-watch 30m

		# Undo it in every cluster of the folder
		kubectl bound-token restore --from ./fleet-backup`)
)

// MigrateOptions holds what `migrate` needs.
type MigrateOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Namespace     string
	AllNamespaces bool
	Names         []string
	Selector      string
	UnusedFor     string
	CleanupPeriod string
	AutoOnly      bool
	// ChunkSize is the page size of every LIST, as kubectl get's.
	ChunkSize int64
	// planned is how many Secrets the question before --apply counted
	// (0 when it was not asked).
	planned        int
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
	// Report writes the audit into the cluster as OpenReports objects
	// (report.go); Reports is their client (a test's fake, or built in
	// Complete), sink gathers the results as the audit judges.
	Report  bool
	Reports versioned.Interface
	sink    *reportSink

	Client kubernetes.Interface
	// Metadata lists the audited Secrets for their metadata only; nil
	// (a test's fake Client alone) lists them whole.
	Metadata metadata.Interface
	// Dynamic reads the pod specs of APIs beyond the built-in kinds; nil
	// makes their readers unknown where the cluster serves such APIs.
	Dynamic dynamic.Interface
	Now     func() time.Time
	// clock follows the apiserver's Date headers through Client; nil with
	// a test's fake Client, whose day is then Now's.
	clock       *kubeapi.ServerClock
	restConfig  *rest.Config // the waves' guard check and /metrics; nil with a fake
	guardDays   int
	guardForSet bool
	// fleet: the audit over many contexts (--contexts, --all-contexts);
	// with --apply, changed in cluster waves (migrate_fleet.go).
	fleet        *fleetFlags
	clusterWaves clusterWaveFlags

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
		ChunkSize:     cmdutil.DefaultChunkSize,
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
		Use:                   "migrate [NAME ...] [-n NAMESPACE | -A] [-l SELECTOR] [--unused-for 90d] [--audit-log FILE]... [--report | --apply [--mode invalidate|delete] [--backup-dir DIR] [--yes]]",
		DisableFlagsInUseLine: true,
		Short:                 "Audit legacy token Secrets; with --apply, back up and invalidate or delete the provably unused ones",
		Long:                  migrateLong,
		Example:               migrateExample,
		RunE:                  runE(o, f),
	}
	addPrintFlags(cmd, o.PrintFlags, "wide", "name")
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look at every namespace.")
	fl.StringVarP(&o.Selector, "selector", "l", "", "Only judge Secrets matching this label selector (readers are still looked for in the whole namespace).")
	fl.StringVar(&o.UnusedFor, "unused-for", o.UnusedFor, "The threshold: how long a token must be unused (or invalid) before the verdict is invalidate (or delete), e.g. 90d or 36h.")
	fl.StringVar(&o.CleanupPeriod, "cleanup-period", o.CleanupPeriod, "kube-controller-manager's --legacy-service-account-token-clean-up-period, for the cleaner's forecast (-o wide, -o json).")
	// kubectl get's flag and default (k8s.io/kubectl pkg/cmd/get/get.go,
	// NewGetOptions: ChunkSize: cmdutil.DefaultChunkSize, 500).
	fl.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize, "Objects per page of every list, as kubectl get's --chunk-size (the legacy Secrets' own list has pages four times as large); larger pages cost fewer round trips and more memory.")
	fl.BoolVar(&o.AutoOnly, "auto-only", false, "Only Secrets auto-generated for their service account (listed in its .secrets).")
	fl.StringArrayVar(&o.AuditLogs, "audit-log", nil, "kube-apiserver audit log (JSON lines, plain or gzip; - for stdin) to read evidence of use from; repeat for several files. A use in it within --unused-for makes the verdict used.")
	fl.BoolVar(&o.IncludeUsed, "include-used", false, "With --apply, also change Secrets whose token was used within --unused-for (or, invalid, is still presented): their clients fail.")
	fl.BoolVar(&o.IncludeUnknown, "include-unknown", false, "With --apply, also change Secrets whose use cannot be told (use not tracked long enough, readers not listable): a client nobody knows of may fail.")
	fl.BoolVar(&o.IncludeMounted, "include-mounted", false, "With --apply, also change Secrets that pods or workloads read: those pods lose access or fail to start.")
	fl.BoolVar(&o.Revoke, "revoke", false, "With --apply, invalidate to revoke a leaked or compromised token: never guarded, and a Secret already invalidated for clean-up loses its guard. Whoever holds a guarded token can re-enable it by presenting it, so a leaked token needs --revoke. The verdicts still decide: add --include-used for a token a client uses, --reinvalidate-restored for one a guard restored.")
	fl.StringVar(&o.GuardFor, "guard-for", o.GuardFor, "With --apply, how many days after its invalidation for clean-up a guard restores a Secret whose token is presented (label bound-token.kubectl.io/guard-until), e.g. 90d. The default, a quarter, covers a quarterly job and is --unused-for's default, the wait before the delete verdict: a Secret stays guarded until it may be deleted.")
	fl.BoolVar(&o.ReinvalidateRestored, "reinvalidate-restored", false, "With --apply, also invalidate Secrets whose verdict is restored-on-use (a guard restored them when a client presented them): that client fails again.")
	fl.BoolVar(&o.Report, "report", false, reportFlagUsage+" Without --apply only.")
	fl.BoolVar(&o.Apply, "apply", false, "Back up, then invalidate or delete the Secrets whose verdict allows it.")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "With --apply, do not ask for confirmation (needed when stdin is not a terminal).")
	fl.StringVar(&o.Mode, "mode", o.Mode, "What --apply does: invalidate (label; reversible by removing it) or delete.")
	fl.StringVar(&o.BackupDir, "backup-dir", "", "Folder for the backup (created 0700). Default: ./bound-token-backup-TIMESTAMP. An existing folder from an interrupted run is resumed. With --contexts/--all-contexts, the fleet folder (default ./bound-token-fleet-backup-TIMESTAMP): one folder per cluster, named by its kube-system uid, and fleet-index.json.")
	addWriteFlags(cmd, &o.writeFlags, "Secrets", `With --apply: "client" only prints what would change; "server" sends every change as a server-side dry run. No backup is written.`)
	addWaveFlags(cmd, o)
	o.fleet = addFleetFlags(f, cmd)
	addClusterWaveFlags(cmd, &o.clusterWaves)
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
	o.clusterWaves.complete(cmd)
	if o.clusterWaves.set && !(o.fleet.enabled() && o.Apply) {
		return usageErrorf("--cluster-wave-growth, --cluster-wave-watch and --allow-unguarded-clusters only make sense with --contexts or --all-contexts and --apply")
	}
	// --audit-log is refused over many clusters: an audit log belongs to
	// one. --apply changes them in cluster waves (migrate_fleet.go), not
	// in Secret waves.
	if done, err := o.fleet.complete(f, cmd, map[string]string{
		"audit-log":  "an audit log belongs to one cluster; use --context",
		"wave-size":  "over many clusters --apply goes in cluster waves (--cluster-wave-growth, --cluster-wave-watch), not Secret waves",
		"wave-watch": "over many clusters --apply goes in cluster waves (--cluster-wave-growth, --cluster-wave-watch), not Secret waves",
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
	if o.Client, o.Metadata, o.Dynamic, err = newAuditClients(cfg, o.QPS, o.Burst); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Report && o.Reports == nil {
		if o.Reports, err = versioned.NewForConfig(cfg); err != nil {
			return usageErrorf("%w", err)
		}
	}
	return nil
}

func (o *MigrateOptions) Validate() error {
	if o.ChunkSize < 1 {
		return fmt.Errorf("--chunk-size %d: use a positive number of objects per page, such as 500", o.ChunkSize)
	}
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
	if o.Report && o.Apply {
		return fmt.Errorf("--report writes an audit and --apply changes Secrets: run --apply first, then the same audit with --report (without --apply) to publish its effect")
	}
	if o.Revoke && o.guardForSet {
		return fmt.Errorf("--revoke writes no guard: drop --guard-for")
	}
	if err := o.validateFleetApply(); err != nil {
		return err
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
		CleanupPeriod: o.period, AutoOnly: o.AutoOnly, Now: o.Now().UTC(), Dynamic: o.Dynamic, PageSize: o.ChunkSize}
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
	if o.fleet.enabled() && o.Apply {
		if err := o.unasked(o.Apply, o.Yes, o.In); err != nil {
			return err
		}
		return o.runFleetApply(ctx)
	}
	if o.fleet.enabled() {
		return o.runFleet(ctx)
	}
	if err := o.unasked(o.Apply, o.Yes, o.In); err != nil {
		return err
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
	if o.Report {
		// Before anything is judged or written: a cluster that does not
		// serve the API, or a caller that may not write it, is said in
		// one line.
		if err := openreports.Preflight(ctx, o.Client, o.reportNeeds(o.scanOptions().Namespace)); err != nil {
			return usageErrorf("%w", err)
		}
		o.sink = newReportSink(o.Now().UTC())
	}
	if streamable(o.format()) {
		if err := o.streamAudit(ctx); err != nil {
			return err
		}
	} else {
		report, err := o.audit(ctx)
		if err != nil {
			return usageErrorf("%w", err)
		}
		if err := o.printAudit(report); err != nil {
			return err
		}
	}
	if !o.Report {
		return nil
	}
	done, err := writeReports(ctx, o.Reports, o.sink, o.reportScope(o.scanOptions().Namespace))
	return reportWritten(o.ErrOut, "", done, err)
}

// reportNeeds is what --report writes for an audit of ns: the Reports of
// ns (every namespace when "") and the ClusterReport.
func (o *MigrateOptions) reportNeeds(ns string) openreports.Needs {
	return openreports.Needs{Reports: true, Namespace: ns, ClusterReports: true}
}
