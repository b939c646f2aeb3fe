package cmd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/doctor"
	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// migrate --apply --wave-size N --wave-watch DURATION: the wiring of
// guard.Waves (the loop and its rules live there).

func addWaveFlags(cmd *cobra.Command, o *MigrateOptions) {
	fl := cmd.Flags()
	fl.IntVar(&o.WaveSize, "wave-size", 0, "With --apply, invalidate in waves of this many Secrets, like a canary: after each wave, watch for --wave-watch and go on only if no client presented a token of the run (a guard's restore, a new last-used label, or a rise of kube-apiserver's invalid-token counter when /metrics is readable). Run again with the same --backup-dir to go on with the next wave.")
	fl.DurationVar(&o.WaveWatch, "wave-watch", 0, "With --wave-size, how long each wave is watched before the next, e.g. 10m; long enough for the clients you expect (a job's period).")
}

// validateWaves: both flags or neither, only for an invalidation for
// clean-up that really changes the cluster.
func (o *MigrateOptions) validateWaves() error {
	if !o.wavesSet {
		return nil
	}
	switch {
	case !o.waveSizeSet || !o.waveWatchSet:
		return fmt.Errorf("--wave-size and --wave-watch go together: each wave is watched before the next")
	case o.WaveSize < 1:
		return fmt.Errorf("--wave-size %d: use at least 1", o.WaveSize)
	case o.WaveWatch <= 0:
		return fmt.Errorf("--wave-watch %s: use a positive duration such as 10m", o.WaveWatch)
	case !o.Apply:
		return fmt.Errorf("--wave-size and --wave-watch only make sense with --apply")
	case o.Mode != backup.ModeInvalidate:
		return fmt.Errorf("--wave-size: waves invalidate; --mode %s is not watched (no guard restores a deleted Secret)", o.Mode)
	case o.DryRun != cmdutil.DryRunNone:
		return fmt.Errorf("--wave-size: a dry run changes nothing to watch; drop --dry-run or the waves")
	case o.Revoke:
		return fmt.Errorf("--wave-size: a revocation is never guarded and is meant at once; drop --revoke or the waves")
	}
	return nil
}

// completeWaves records which wave flags were given (a 0 given is an
// error, an absent flag is not).
func (o *MigrateOptions) completeWaves(cmd *cobra.Command) {
	o.waveSizeSet = cmd.Flags().Changed("wave-size")
	o.waveWatchSet = cmd.Flags().Changed("wave-watch")
	o.wavesSet = o.waveSizeSet || o.waveWatchSet
}

// invalidUses reads guard.InvalidUsesMetric off kube-apiserver's /metrics,
// as doctor reads its counters.
func (o *MigrateOptions) invalidUses(ctx context.Context) (float64, error) {
	b, err := o.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := doctor.ParseCounters(b, []string{guard.InvalidUsesMetric})[guard.InvalidUsesMetric]
	if !ok {
		return 0, errors.New("not served (kube-apiserver before 1.29?)")
	}
	return v, nil
}

// guardNotice says once, at the start, whether a guard restores a Secret
// whose token is presented during a watch.
func (o *MigrateOptions) guardNotice(ctx context.Context, dir string) {
	installed, why, err := o.guardInstalled(ctx)
	switch {
	case err == nil && why == "":
		return // a test's fake client
	case err != nil:
		fmt.Fprintf(o.ErrOut, "warning: cannot tell whether the guard is installed (%v): ", err)
	case installed:
		fmt.Fprintf(o.ErrOut, "%s: a client that presents a token of a wave is refused once, then its Secret is restored; the run stops and names it.\n", why)
		return
	default:
		fmt.Fprintf(o.ErrOut, "warning: %s: ", why)
	}
	fmt.Fprintf(o.ErrOut, "only this run watches the waves (a guard watch running elsewhere cannot be seen). A client that presents a token of a wave stops the run and stays refused until that Secret is restored (kubectl bound-token restore --from %s --only NAMESPACE/NAME); to have it restored at the first use, install the guard first (kubectl bound-token guard install, or guard watch).\n", dir)
}

// guardInstalled asks the cluster whether the guard's policy and binding
// are installed (guard.PolicyInstalled); why is "" with no error when there
// is no cluster to ask (a test's fake client).
func (o *MigrateOptions) guardInstalled(ctx context.Context) (installed bool, why string, err error) {
	if o.restConfig == nil {
		return false, "", nil
	}
	c, err := guard.NewCluster(o.restConfig)
	if err != nil {
		return false, "", err
	}
	return guard.PolicyInstalled(ctx, c)
}

// unguardedNotice says once, before an invalidation for clean-up, when no
// guard's policy is installed: a client the evidence missed then stays
// refused until someone restores its Secret. A guard watch running
// elsewhere cannot be seen from here, so it is named as the other way.
func (o *MigrateOptions) unguardedNotice(ctx context.Context) {
	installed, why, err := o.guardInstalled(ctx)
	switch {
	case err == nil && why == "", installed:
		return
	case err != nil:
		fmt.Fprintf(o.ErrOut, "warning: cannot tell whether the guard is installed (%v); ", err)
	default:
		fmt.Fprintf(o.ErrOut, "warning: this invalidation is unguarded (%s); ", why)
	}
	fmt.Fprintf(o.ErrOut, "a client the evidence missed stays refused until its Secret is restored. To restore it at its first refused use: kubectl bound-token guard install (or, where admission policies are not served, kubectl bound-token guard watch -A while the change settles).\n")
}

func (o *MigrateOptions) runWaves(ctx context.Context, folder *backup.Folder, scan legacy.ScanOptions, opts legacy.ApplyOptions, progress *progress) error {
	if o.Metadata == nil {
		return usageErrorf("--wave-size needs a metadata client")
	}
	o.guardNotice(ctx, folder.Dir)
	opts.Limit = o.WaveSize
	w := &guard.Waves{
		Watch:    o.WaveWatch,
		Metadata: o.Metadata,
		Apply: func(ctx context.Context) (*legacy.ApplyResult, error) {
			progress.reset()
			res, err := legacy.Apply(ctx, o.Client, folder, scan, opts)
			progress.end()
			return res, err
		},
		OnNote: func(s string) { fmt.Fprintln(o.ErrOut, "warning: "+s) },
	}
	if o.restConfig != nil {
		w.Uses = o.invalidUses
	}
	if progress.on {
		w.OnWave = o.showWave
	}
	res, err := w.Run(ctx)
	if res == nil {
		return usageErrorf("%w", err)
	}
	if perr := o.printOutcomes(res.Outcomes, res.Counts, folder, res.Waves...); perr != nil {
		return perr
	}
	o.printBasis(res.Info)
	abs, _ := filepath.Abs(folder.Dir)
	if err != nil {
		var pe *legacy.PurposeError
		if errors.As(err, &pe) {
			return usageErrorf("%w (--revoke, --guard-for)", err)
		}
		return unfinished(err, abs)
	}
	if res.Stopped != "" {
		return wavesStopped(res, abs)
	}
	return failedOutcomes(res.Outcomes)
}

// showWave says on a terminal when a wave starts and how it ended.
func (o *MigrateOptions) showWave(wave guard.Wave, start bool) {
	if start {
		fmt.Fprintf(o.ErrOut, "wave %d: invalidated %s; watching for %s\n", wave.Number, strings.Join(wave.Secrets, ", "), o.WaveWatch)
	} else {
		fmt.Fprintf(o.ErrOut, "wave %d: %s\n", wave.Number, wave.Result)
	}
}

// wavesStopped is the exit 1 of waves that a client (or a failure)
// stopped, with how to go on from the backup folder abs.
func wavesStopped(res *guard.WavesResult, abs string) error {
	last := res.Waves[len(res.Waves)-1]
	if last.Result == guard.WaveFailed {
		return failedErrorf("%s; run the same command again with --backup-dir %s to finish", res.Stopped, abs)
	}
	hint := ""
	if last.Result == guard.WavePresented || last.Result == guard.WaveRestored {
		for _, p := range last.Presented {
			if p.RestoredBy == "" {
				hint += fmt.Sprintf("; to let its client in again now: kubectl bound-token restore --from %s --only %s/%s", abs, p.Namespace, p.Name)
			}
		}
	}
	return failedErrorf("%s%s; once that client is found, go on with the next wave: the same command with --backup-dir %s", res.Stopped, hint, abs)
}
