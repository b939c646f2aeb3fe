package cmd

import (
	"context"
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
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

var (
	migrateLong = templates.LongDesc(`
		Find legacy ServiceAccount token Secrets and move the cluster off them.

		Without --apply, migrate changes nothing: it lists every Secret of type
		kubernetes.io/service-account-token with its service account, whether it was
		auto-generated (listed in the service account) or made by hand, the day its token
		was last used, whether it is already invalid, its age, the pods that read it (and
		their workloads), and a recommended action.

		With --apply, every selected Secret (and every service account whose list will
		change) is first written to --backup-dir, read back and checked; only then is the
		Secret invalidated (label kubernetes.io/legacy-token-invalid-since, which makes the
		apiserver reject the token) or deleted. Every change carries the backed-up
		resourceVersion as a precondition, so a Secret changed since its backup is skipped,
		never overwritten. Secrets that pods read are skipped unless --include-mounted.
		An interrupted run (Ctrl-C, kill, lost connection) is finished by running the same
		command again with the same --backup-dir. Undo with "kubectl bound-token restore".

		Exit codes: 0 all done, 1 some Secret failed or changed since its backup, 2 bad
		flags or unusable backup folder, nothing changed.`)

	migrateExample = templates.Examples(`
		# Audit every namespace: who uses which legacy token, and what to do about it
		kubectl bound-token migrate -A

		# Only auto-generated tokens unused for 90 days, as JSON for a script
		kubectl bound-token migrate -A --auto-only --unused-for 90d -o json

		# Check what an apply would do, server-side, without changing anything
		kubectl bound-token migrate -A --unused-for 90d --apply --dry-run=server

		# Invalidate them, keeping a backup (the folder is printed; restore uses it)
		kubectl bound-token migrate -A --unused-for 90d --apply --backup-dir ./legacy-backup

		# Finish an interrupted run: same command, same folder
		kubectl bound-token migrate -A --unused-for 90d --apply --backup-dir ./legacy-backup

		# Delete already-invalid tokens in one namespace
		kubectl bound-token migrate -n ci -l team=ci --apply --mode delete`)
)

// MigrateOptions holds what `migrate` needs.
type MigrateOptions struct {
	PrintFlags *genericclioptions.PrintFlags

	Namespace      string
	AllNamespaces  bool
	Selector       string
	UnusedFor      string
	AutoOnly       bool
	IncludeMounted bool

	Apply     bool
	Mode      string
	BackupDir string
	writeFlags

	Client kubernetes.Interface
	Now    func() time.Time

	unusedFor time.Duration
	genericiooptions.IOStreams
}

func NewMigrateOptions(streams genericiooptions.IOStreams) *MigrateOptions {
	return &MigrateOptions{
		PrintFlags: genericclioptions.NewPrintFlags(""),
		Mode:       legacy.ModeInvalidate,
		writeFlags: defaultWriteFlags(),
		Now:        time.Now,
		IOStreams:  streams,
	}
}

func NewCmdMigrate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewMigrateOptions(streams)
	cmd := &cobra.Command{
		Use:                   "migrate [-n NAMESPACE | -A] [-l SELECTOR] [--unused-for 90d] [--apply [--mode invalidate|delete] [--backup-dir DIR]]",
		DisableFlagsInUseLine: true,
		Short:                 "Audit legacy token Secrets; with --apply, back them up and invalidate or delete them",
		Long:                  migrateLong,
		Example:               migrateExample,
		Args:                  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Flags first: a typo should not wait on the kubeconfig.
			if err := o.Validate(); err != nil {
				return usageError(err)
			}
			if err := o.Complete(f); err != nil {
				return usageError(err)
			}
			return o.Run(cmd.Context())
		},
	}
	o.PrintFlags.AddFlags(cmd)
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Look at every namespace.")
	fl.StringVarP(&o.Selector, "selector", "l", "", "Only Secrets matching this label selector.")
	fl.StringVar(&o.UnusedFor, "unused-for", "", "Only Secrets whose token was last used (or, never used, created) at least this long ago, e.g. 90d or 36h.")
	fl.BoolVar(&o.AutoOnly, "auto-only", false, "Only Secrets auto-generated for their service account (listed in its .secrets).")
	fl.BoolVar(&o.IncludeMounted, "include-mounted", false, "With --apply, also act on Secrets that pods read; those pods lose access.")
	fl.BoolVar(&o.Apply, "apply", false, "Back up, then invalidate or delete the selected Secrets.")
	fl.StringVar(&o.Mode, "mode", o.Mode, "What --apply does: invalidate (label; reversible by removing it) or delete.")
	fl.StringVar(&o.BackupDir, "backup-dir", "", "Folder for the backup (created 0700). Default: ./bound-token-backup-TIMESTAMP. An existing folder from an interrupted run is resumed.")
	addWriteFlags(cmd, &o.writeFlags, `With --apply: "client" only prints what would change; "server" sends every change as a server-side dry run. No backup is written.`)
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{legacy.ModeInvalidate, legacy.ModeDelete}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("backup-dir", completeBackupDirs)
	return cmd
}

func (o *MigrateOptions) Complete(f cmdutil.Factory) error {
	var err error
	if o.Namespace, _, err = f.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return err
	}
	o.Client, err = newThrottledClient(cfg, o.QPS, o.Burst)
	return err
}

func newThrottledClient(cfg *rest.Config, qps float32, burst int) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	return kubernetes.NewForConfig(cfg)
}

// writeFlags are shared by the commands that change many objects.
type writeFlags struct {
	DryRun      string
	Concurrency int
	QPS         float32
	Burst       int
}

func defaultWriteFlags() writeFlags {
	return writeFlags{DryRun: legacy.DryRunNone, Concurrency: 8, QPS: 50, Burst: 100}
}

func addWriteFlags(cmd *cobra.Command, w *writeFlags, dryRunHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&w.DryRun, "dry-run", w.DryRun, dryRunHelp)
	fl.Lookup("dry-run").NoOptDefVal = legacy.DryRunClient
	fl.IntVar(&w.Concurrency, "concurrency", w.Concurrency, "How many Secrets to change at once.")
	fl.Float32Var(&w.QPS, "qps", w.QPS, "Most requests per second sent to the apiserver.")
	fl.IntVar(&w.Burst, "burst", w.Burst, "Most requests sent in a burst above --qps.")
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{legacy.DryRunNone, legacy.DryRunClient, legacy.DryRunServer}, cobra.ShellCompDirectiveNoFileComp))
}

func (w *writeFlags) validate() error {
	switch w.DryRun {
	case legacy.DryRunNone, legacy.DryRunClient, legacy.DryRunServer:
	default:
		return fmt.Errorf(`--dry-run %q: use "none", "client" or "server"`, w.DryRun)
	}
	if w.Concurrency < 1 || w.QPS <= 0 || w.Burst < 1 {
		return fmt.Errorf("--concurrency, --qps and --burst must be positive")
	}
	return nil
}

func (o *MigrateOptions) Validate() error {
	if o.UnusedFor != "" {
		d, err := legacy.ParseAge(o.UnusedFor)
		if err != nil {
			return fmt.Errorf("--unused-for: %v", err)
		}
		o.unusedFor = d
	}
	if o.Mode != legacy.ModeInvalidate && o.Mode != legacy.ModeDelete {
		return fmt.Errorf("--mode %q: use invalidate or delete", o.Mode)
	}
	if err := o.writeFlags.validate(); err != nil {
		return err
	}
	if !o.Apply && (o.DryRun != legacy.DryRunNone || o.BackupDir != "" || o.IncludeMounted) {
		return fmt.Errorf("--dry-run, --backup-dir and --include-mounted only make sense with --apply")
	}
	if o.Apply && o.DryRun != legacy.DryRunNone && o.BackupDir != "" {
		return fmt.Errorf("a dry run writes no backup: drop --backup-dir")
	}
	if f := o.format(); f != "" && f != "json" && f != "yaml" && f != "name" && !strings.HasPrefix(f, "jsonpath") {
		return fmt.Errorf("--output %q is not supported; use json, yaml, name or jsonpath=...", f)
	}
	return nil
}

func (o *MigrateOptions) format() string {
	if o.PrintFlags.OutputFormat == nil {
		return ""
	}
	return *o.PrintFlags.OutputFormat
}

func (o *MigrateOptions) scanOptions() legacy.ScanOptions {
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	return legacy.ScanOptions{Namespace: ns, Selector: o.Selector, UnusedFor: o.unusedFor, AutoOnly: o.AutoOnly, Now: o.Now()}
}

func (o *MigrateOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Apply {
		return o.runApply(ctx)
	}
	report := legacy.NewReport()
	err := legacy.Scan(ctx, o.Client, o.scanOptions(), func(f *legacy.Finding) error {
		// The printed row is all that is kept: holding each listed Secret
		// (its data included) would put the whole list in memory.
		f.Secret = nil
		report.Items = append(report.Items, f)
		report.Summary.Add(f)
		return nil
	})
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	return o.printAudit(report)
}

func (o *MigrateOptions) printAudit(r *legacy.Report) error {
	switch f := o.format(); {
	case f == "name":
		for _, it := range r.Items {
			fmt.Fprintf(o.Out, "secret/%s\n", it.Name)
		}
		return nil
	case f != "":
		p, err := o.PrintFlags.ToPrinter()
		if err != nil {
			return usageError(err)
		}
		return p.PrintObj(r, o.Out)
	}
	if len(r.Items) == 0 {
		fmt.Fprintln(o.ErrOut, "No legacy token Secrets found.")
		return nil
	}
	now := o.Now()
	w := printers.GetNewTabWriter(o.Out)
	fmt.Fprintln(w, "NAMESPACE\tNAME\tSERVICEACCOUNT\tORIGIN\tLAST-USED\tINVALID-SINCE\tAGE\tREAD-BY\tACTION\tREASON")
	for _, it := range r.Items {
		sa := it.ServiceAccount
		if it.ServiceAccountState != legacy.SAOK {
			sa += " (" + it.ServiceAccountState + ")"
		}
		origin := "manual"
		if it.AutoGenerated {
			origin = "auto"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Namespace, it.Name, sa, origin,
			orNone(it.LastUsed), orNone(it.InvalidSince), duration.HumanDuration(now.Sub(it.Created.Time)),
			consumers(it.Consumers), it.Action, it.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	s := r.Summary
	actions := make([]string, 0, len(s.Actions))
	for a, n := range s.Actions {
		actions = append(actions, fmt.Sprintf("%d %s", n, a))
	}
	sort.Strings(actions)
	fmt.Fprintf(o.Out, "\n%d legacy token Secret%s: %s; %d read by pods, %d already invalid.\n",
		s.Total, plural(s.Total), strings.Join(actions, ", "), s.Mounted, s.Invalid)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func consumers(cs []legacy.Consumer) string {
	if len(cs) == 0 {
		return "<none>"
	}
	c := cs[0]
	s := "pod/" + c.Pod
	if c.Workload != "" {
		s += "(" + c.Workload + ")"
	}
	if len(cs) > 1 {
		s += fmt.Sprintf("+%d", len(cs)-1)
	}
	return s
}

func (o *MigrateOptions) runApply(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	now := o.Now().UTC()
	scan := o.scanOptions()
	if err := legacy.CheckAccess(ctx, o.Client, scan.Namespace, legacy.ApplyPermissions(o.Mode)); err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	var backup *legacy.Backup
	if o.DryRun == legacy.DryRunNone {
		dir := o.BackupDir
		if dir == "" {
			dir = "bound-token-backup-" + now.Format("20060102T150405Z")
		}
		var err error
		if backup, err = legacy.OpenBackup(dir, o.Mode, now.Format("2006-01-02")); err != nil {
			return &ExitError{Code: ExitUsage, Err: err}
		}
		defer backup.Close()
		verb := "backing up to"
		if backup.Resumed() {
			verb = "resuming the run recorded in"
		}
		// Printed before any change so that a killed run can be resumed.
		fmt.Fprintf(o.ErrOut, "%s %s (to resume or undo: --backup-dir %s / kubectl bound-token restore --from %s)\n", verb, dir, dir, dir)
	}
	date := now.Format("2006-01-02")
	if backup != nil {
		// A resumed run keeps the first day's date: one backup, one label
		// value, which is how a patch whose record was lost is recognised.
		date = backup.Index.Date
	}
	progress := newProgress(o.ErrOut)
	res, err := legacy.Apply(ctx, o.Client, backup, scan, legacy.ApplyOptions{
		Mode:           o.Mode,
		Date:           date,
		DryRun:         o.DryRun,
		IncludeMounted: o.IncludeMounted,
		Workers:        o.Concurrency,
		Done:           progress.step,
	})
	progress.end()
	if res == nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	if perr := o.printOutcomes(res.Outcomes, res.Counts, backup); perr != nil {
		return perr
	}
	if err != nil {
		hint := ""
		if backup != nil {
			hint = fmt.Sprintf("; run the same command again with --backup-dir %s to finish", backup.Dir)
		}
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%v%s", err, hint)}
	}
	for _, oc := range res.Outcomes {
		if oc.Failed() {
			return silentFailure
		}
	}
	return nil
}

// outcomeList is the printed form of an apply or a restore.
type outcomeList struct {
	metav1.TypeMeta `json:",inline"`
	BackupDir       string           `json:"backupDir,omitempty"`
	Items           []legacy.Outcome `json:"items"`
	Counts          map[string]int   `json:"counts"`
}

func (l *outcomeList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = append([]legacy.Outcome(nil), l.Items...)
	c.Counts = map[string]int{}
	for k, v := range l.Counts {
		c.Counts[k] = v
	}
	return &c
}

func printOutcomeList(pf *genericclioptions.PrintFlags, out io.Writer, kind, dir string, items []legacy.Outcome, counts map[string]int) error {
	format := ""
	if pf.OutputFormat != nil {
		format = *pf.OutputFormat
	}
	switch format {
	case "":
	case "name":
		// Like kubectl: the objects this run changed (or would change).
		for _, it := range items {
			switch it.Result {
			case legacy.OutInvalidated, legacy.OutDeleted, legacy.OutDeletedRefLeft, legacy.OutWouldChange, legacy.OutRecreated, legacy.OutLabelRemoved:
				if it.Kind == "" {
					fmt.Fprintf(out, "secret/%s\n", it.Name)
				}
			}
		}
		return nil
	default:
		p, err := pf.ToPrinter()
		if err != nil {
			return usageError(err)
		}
		l := &outcomeList{TypeMeta: metav1.TypeMeta{APIVersion: legacy.ReportGroupVersion.String(), Kind: kind}, BackupDir: dir, Items: items, Counts: counts}
		return p.PrintObj(l, out)
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

func summaryLine(counts map[string]int) string {
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

func (o *MigrateOptions) printOutcomes(items []legacy.Outcome, counts map[string]int, backup *legacy.Backup) error {
	dir := ""
	if backup != nil {
		dir = backup.Dir
	}
	if counts == nil {
		counts = map[string]int{}
	}
	if err := printOutcomeList(o.PrintFlags, o.Out, "LegacyTokenMigration", dir, items, counts); err != nil {
		return err
	}
	line := "summary: " + summaryLine(counts)
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

func (p *progress) step(o legacy.Outcome) {
	if !p.on {
		return
	}
	p.n++
	p.counts[o.Result]++
	fmt.Fprintf(p.w, "\r\033[K%d done: %s", p.n, summaryLine(p.counts))
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
		if fi, err := os.Stat(filepath.Join(m, legacy.IndexFile)); err == nil && fi.Mode().IsRegular() {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
