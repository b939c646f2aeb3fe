package cmd

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/fleet"
	"github.com/bound-token/kubectl-bound-token/pkg/fleetapply"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// restore --from a fleet folder: each cluster of its index, through the
// context the index names, once that context is shown to reach the
// cluster whose uid names the cluster's folder (fleetapply.CheckIdentity).

// fleetRestoreTimeout bounds each cluster's restore (and each request):
// a restore writes every Secret of its backup, more than an audit reads.
const fleetRestoreTimeout = 30 * time.Minute

// completeFleet keeps the factory for the contexts of the fleet folder.
func (o *RestoreOptions) completeFleet(f cmdutil.Factory, cmd *cobra.Command) error {
	ff := &fleetFlags{Parallel: fleet.DefaultParallel, ContextTimeout: fleetRestoreTimeout, factory: f, eachContext: true}
	var err error
	if ff.pluginPolicy, err = credentialPluginPolicy(cmd); err != nil {
		return usageErrorf("%w", err)
	}
	ff.json = outputFormat(o.PrintFlags) == "json"
	o.fleet = ff
	return nil
}

// validateFleet: --contexts only with a fleet folder, --only and -o name
// never with one.
func (o *RestoreOptions) validateFleet() error {
	if o.fleet == nil {
		if len(o.Contexts) > 0 {
			return fmt.Errorf("--contexts needs a fleet folder (one written by migrate --contexts/--all-contexts --apply); %s is not one", o.From)
		}
		return nil
	}
	if len(o.Only) > 0 {
		return fmt.Errorf("--only names Secrets of one cluster: with a fleet folder, restore from the cluster's own folder (%s/UID) with --context instead", o.From)
	}
	if outputFormat(o.PrintFlags) == "name" {
		return fmt.Errorf("--output %q is not supported with a fleet folder; use json, yaml, jsonpath or go-template", "name")
	}
	return nil
}

// runFleet restores every cluster the fleet folder lists (or those of
// --contexts), each only where its context still reaches it.
func (o *RestoreOptions) runFleet(ctx context.Context) error {
	ix, err := fleetapply.ReadIndex(o.From)
	if err != nil {
		return usageErrorf("%w", err)
	}
	entries, err := ix.Select(o.Contexts)
	if err != nil {
		return usageErrorf("--contexts: %v", err)
	}
	if len(entries) == 0 {
		return usageErrorf("the fleet folder %s lists no cluster: nothing to restore", o.From)
	}
	byContext := map[string]fleetapply.Entry{}
	for _, e := range entries {
		o.fleet.Contexts = append(o.fleet.Contexts, e.Context)
		byContext[e.Context] = e
	}
	fn := func(ctx context.Context, c *fleet.Cluster) (fleet.Result, error) {
		e := byContext[c.Context]
		if err := fleetapply.CheckIdentity(e, c.Context, c.UID); err != nil {
			return fleet.Result{}, err
		}
		f, err := backup.Inspect(filepath.Join(o.From, e.Folder))
		if err != nil {
			return fleet.Result{}, err
		}
		r, err := legacy.OpenRestore(f, nil)
		if err != nil {
			return fleet.Result{}, err
		}
		if kubeapi.CheckAccess(ctx, c.Client, "", legacy.RestorePermissions()) != nil {
			for _, ns := range r.Namespaces() {
				if err := kubeapi.CheckAccess(ctx, c.Client, ns, legacy.RestorePermissions()); err != nil {
					return fleet.Result{}, err
				}
			}
		}
		out := legacy.Restore(ctx, c.Client, r, legacy.RestoreOptions{DryRun: o.DryRun, Workers: o.Concurrency})
		if out == nil {
			out = []backup.Outcome{}
		}
		failed := false
		for _, oc := range out {
			failed = failed || oc.Failed()
		}
		return fleet.Result{Object: out, Counts: countOutcomes(out), Failed: failed}, nil
	}
	table := func(w io.Writer, sections []fleet.Section) {
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "CONTEXT\tNAMESPACE\tNAME\tRESULT\tMESSAGE")
		for _, s := range sections {
			for _, oc := range s.Result.([]backup.Outcome) {
				name := oc.Name
				if oc.Kind != "" {
					name = oc.Kind + "/" + oc.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Context, oc.Namespace, name, oc.Result, oc.Message)
			}
		}
		_ = tw.Flush()
	}
	return runFleet(ctx, o.IOStreams, o.fleet, "restore", o.printer, 0, 0, fn, table)
}
