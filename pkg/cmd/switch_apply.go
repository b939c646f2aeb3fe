package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/switcher"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

func (o *SwitchOptions) runApply(ctx context.Context, plans []*switcher.Plan) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	now := o.Clock.Now().UTC()
	switchable := 0
	for _, p := range plans {
		if p.Switchable() {
			switchable++
		}
	}
	dir := o.BackupDir
	_, statErr := os.Stat(filepath.Join(dir, backup.IndexFile))
	resuming := dir != "" && statErr == nil
	if switchable == 0 && !resuming && len(plans) == 0 {
		fmt.Fprintln(o.ErrOut, "No workload reads a legacy token Secret: nothing to do.")
		return nil
	}
	if switchable > 0 {
		if err := switcher.CheckAccess(ctx, o.Client, plans); err != nil {
			return usageErrorf("%w", err)
		}
	}
	dry := o.DryRun != cmdutil.DryRunNone
	if !o.Yes && !dry && switchable > 0 && !o.ask(plans, switchable) {
		return failedErrorf("%w", kubeapi.ErrNotConfirmed)
	}
	var folder *backup.Folder
	if !dry && (switchable > 0 || resuming) {
		var err error
		if folder, err = openBackup(o.ErrOut, dir, "bound-token-switch-", backup.ModeSwitch, now); err != nil {
			return err
		}
		defer folder.Close()
		dir = folder.Dir
	}
	out, err := o.apply(ctx, folder, plans)
	if out == nil && err != nil {
		return usageErrorf("%w", err)
	}
	if perr := printSwitchOutcomes(o, dir, folder, out, countOutcomes(out)); perr != nil {
		return perr
	}
	o.printUnread(ctx, plans, out, folder)
	return o.exit(err, out, dir)
}

// ask shows the plans and asks on the terminal.
func (o *SwitchOptions) ask(plans []*switcher.Plan, switchable int) bool {
	for _, p := range plans {
		writePlan(o.ErrOut, p)
	}
	fmt.Fprintf(o.ErrOut, "--apply will back up and switch %d workload%s (%s).\n", switchable, text.Plural(switchable), planCounts(plans))
	return confirm(o.In, o.ErrOut, "Proceed?")
}

// apply switches the plans into folder (nil with --dry-run); without a
// folder or a dry run, nothing is switchable and each plan is reported
// as refused or skipped.
func (o *SwitchOptions) apply(ctx context.Context, folder *backup.Folder, plans []*switcher.Plan) ([]backup.Outcome, error) {
	if folder != nil || o.DryRun != cmdutil.DryRunNone {
		prog := newLine(o.ErrOut)
		defer prog.end()
		return switcher.Apply(ctx, workload.Clients{Kube: o.Client, Dynamic: o.Dynamic}, folder, plans, switcher.ApplyOptions{
			Options: o.options(), DryRun: o.DryRun, Workers: o.Concurrency, Wait: o.Wait, Timeout: o.Timeout, Progress: prog.show, Clock: o.Clock,
		})
	}
	var out []backup.Outcome
	for _, p := range plans {
		res := switcher.OutSkipped
		if p.Verdict == switcher.VerdictRefused {
			res = switcher.OutRefused
		}
		out = append(out, backup.Outcome{Kind: p.Kind, Group: p.Group, Namespace: p.Namespace, Name: p.Name, Result: res, Message: strings.Join(p.Reasons, "; ")})
	}
	return out, nil
}

// exit is the run's error after its report: err (what stopped it), or
// exit 1 when some workload is not done.
func (o *SwitchOptions) exit(err error, out []backup.Outcome, dir string) error {
	if err != nil {
		if o.DryRun != cmdutil.DryRunNone {
			dir = ""
		}
		return unfinished(err, dir)
	}
	for _, oc := range out {
		if !switcher.Done(oc) {
			return silent(ExitFailed)
		}
	}
	return nil
}

func printSwitchOutcomes(o *SwitchOptions, dir string, folder *backup.Folder, out []backup.Outcome, counts map[string]int) error {
	if folder == nil {
		dir = ""
	}
	if o.format() == "name" {
		for _, it := range out {
			switch it.Result {
			case switcher.OutSwitched, switcher.OutNotRolled, switcher.OutTimeout:
				fmt.Fprintf(o.Out, "%s/%s\n", workload.TypeName(it.Group, it.Kind), it.Name)
			case backup.OutWouldChange:
				// As kubectl marks a dry run's names (k8s.io/kubectl
				// pkg/cmd/util/helpers.go, PrintFlagsWithDryRunStrategy).
				mark := "dry run"
				if o.DryRun == cmdutil.DryRunServer {
					mark = "server dry run"
				}
				fmt.Fprintf(o.Out, "%s/%s (%s)\n", workload.TypeName(it.Group, it.Kind), it.Name, mark)
			}
		}
	} else if err := printOutcomeList(o.printer, o.format(), o.Out, "LegacyTokenSwitch", dir, out, counts); err != nil {
		return err
	}
	printSummary(o.ErrOut, counts, dir)
	return nil
}

// printUnread names the Secrets that the switched workloads read and that
// nothing reads now, with the migrate command that judges them.
func (o *SwitchOptions) printUnread(ctx context.Context, plans []*switcher.Plan, out []backup.Outcome, folder *backup.Folder) {
	changed := map[string]bool{}
	for _, oc := range out {
		if oc.Result == switcher.OutSwitched {
			changed[oc.Kind+"."+oc.Group+"/"+oc.Namespace+"/"+oc.Name] = true
		}
	}
	byNS := map[string]map[string]bool{}
	for _, p := range plans {
		if !changed[p.Kind+"."+p.Group+"/"+p.Namespace+"/"+p.Name] {
			continue
		}
		if byNS[p.Namespace] == nil {
			byNS[p.Namespace] = map[string]bool{}
		}
		for _, s := range p.Secrets {
			byNS[p.Namespace][s] = true
		}
	}
	var nss []string
	for ns := range byNS {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		var names []string
		for n := range byNS[ns] {
			names = append(names, n)
		}
		sort.Strings(names)
		unread, read, err := o.unread(ctx, ns, names)
		if err != nil {
			fmt.Fprintf(o.ErrOut, "warning: cannot tell which Secrets of %s nothing reads now: %v\n", ns, err)
			continue
		}
		for _, n := range sortedKeys(read) {
			fmt.Fprintf(o.ErrOut, "Still read in %s: %s, by %s\n", ns, n, read[n])
		}
		if len(unread) == 0 {
			continue
		}
		fmt.Fprintf(o.ErrOut, "Read by nothing now in %s: %s. Judge them with: kubectl bound-token migrate -n %s %s\n", ns, strings.Join(unread, ", "), ns, strings.Join(unread, " "))
	}
	if len(nss) > 0 && folder != nil {
		fmt.Fprintf(o.ErrOut, "If migrate --apply then changes them, undo in this order: kubectl bound-token restore --from MIGRATE-BACKUP, then kubectl bound-token restore --from %s\n", folder.Dir)
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unread is legacy.Unread; after waited rollouts, asked again while
// replaced pods are leaving (legacy.UnreadAfterRollout).
func (o *SwitchOptions) unread(ctx context.Context, ns string, names []string) ([]string, map[string]string, error) {
	if o.Wait {
		return legacy.UnreadAfterRollout(ctx, o.Client, o.Dynamic, o.Clock, ns, names)
	}
	return legacy.Unread(ctx, o.Client, o.Dynamic, ns, names)
}
