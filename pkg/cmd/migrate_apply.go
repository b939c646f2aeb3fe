package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

func (o *MigrateOptions) runApply(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	scan, err := o.prepareApply(ctx)
	if err != nil {
		return err
	}
	var folder *backup.Folder
	if o.DryRun == cmdutil.DryRunNone {
		var err error
		if folder, err = openBackup(o.ErrOut, o.BackupDir, "bound-token-backup-", o.Mode, scan.Now); err != nil {
			return err
		}
		defer folder.Close()
	}
	progress := newProgress(o.ErrOut)
	if o.WaveSize == 0 {
		// Known when the run asked first (the count it showed).
		progress.of(o.planned)
	}
	opts := o.applyOptions(scan.Now, progress)
	if o.WaveSize > 0 {
		return o.runWaves(ctx, folder, scan, opts, progress)
	}
	if o.Mode == backup.ModeInvalidate && !o.Revoke && o.DryRun == cmdutil.DryRunNone {
		o.unguardedNotice(ctx)
	}
	dir := ""
	if folder != nil {
		dir = folder.Dir
	}
	// The outcomes are written as they come, in the order the Secrets
	// were listed, where the format allows (streamable): memory holds the
	// Secrets in flight, not the run's report.
	var stream *outcomeStream
	if o.printer == nil || streamable(o.format()) {
		stream = newOutcomeStream(o.Out, o.format(), "LegacyTokenMigration", dir)
		opts.Stream = func(oc backup.Outcome) error {
			if err := stream.item(oc); err != nil {
				return &outputError{err}
			}
			return nil
		}
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
	if stream != nil {
		if perr := stream.end(res.Counts); perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			stream.abandon()
		}
		printSummary(o.ErrOut, res.Counts, dir)
	} else if perr := o.printOutcomes(res.Outcomes, res.Counts, folder); perr != nil {
		return perr
	}
	o.printBasis(res.Info)
	var oerr *outputError
	if errors.As(err, &oerr) {
		err = fmt.Errorf("write the report: %v; the output above is incomplete (no new Secret was taken, those under way were finished)", oerr.err)
	}
	if err != nil {
		return unfinished(err, dir)
	}
	if stream != nil && stream.failed {
		return silent(ExitFailed)
	}
	return failedOutcomes(res.Outcomes)
}

// prepareApply checks the rights an apply needs, reads the day of the run
// (the apiserver's, see kubeapi.ServerClock) into the scan's Now, and
// asks unless --yes or --dry-run.
func (o *MigrateOptions) prepareApply(ctx context.Context) (legacy.ScanOptions, error) {
	scan := o.scanOptions()
	if err := kubeapi.CheckAccess(ctx, o.Client, scan.Namespace, legacy.ApplyPermissions(o.Mode)); err != nil {
		return scan, usageErrorf("%w", err)
	}
	// The access check above has just read the apiserver's clock.
	now, err := o.serverNow(ctx)
	if err != nil {
		return scan, usageErrorf("%w", err)
	}
	scan.Now = now
	if o.DryRun == cmdutil.DryRunNone && !o.Yes {
		ok, err := o.ask(ctx, scan)
		if err != nil {
			return scan, err
		}
		if !ok {
			return scan, failedErrorf("%w", kubeapi.ErrNotConfirmed)
		}
	}
	return scan, nil
}

// applyOptions are legacy.Apply's, progress counting what is done. Each
// run writes its own day: a patch whose record was lost is recognised by
// the marks it wrote with it, not by the folder's day.
func (o *MigrateOptions) applyOptions(now time.Time, progress *progress) legacy.ApplyOptions {
	return legacy.ApplyOptions{
		Mode:      o.Mode,
		Date:      now.Format("2006-01-02"),
		Revoke:    o.Revoke,
		GuardDays: o.guardDays,
		DryRun:    o.DryRun,
		Include:   o.include(),
		Workers:   o.Concurrency,
		Done:      progress.step,
	}
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
	n, left := 0, 0
	for _, c := range change {
		n += c
	}
	for _, c := range skip {
		left += c
	}
	// Every Secret found gets an outcome: the progress line's total.
	o.planned = n + left
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
	printSummary(o.ErrOut, counts, dir)
	return nil
}

// outputError: the report could not be written (a closed pipe).
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
