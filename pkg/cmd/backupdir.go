package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

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

// unfinished is the exit 1 of a run that err stopped (ctx's end reads
// "interrupted"), with how to finish it from dir, the backup folder ("":
// none was written).
func unfinished(err error, dir string) error {
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	if dir == "" {
		return failedErrorf("%w", err)
	}
	return failedErrorf("%v; run the same command again with --backup-dir %s to finish", err, dir)
}
