package cmd

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
)

// commandOptions is the shape of every leaf command, as in kubectl's
// create_token.go: Complete fills in what the flags and the factory give,
// Validate checks without side effects, Run acts.
type commandOptions interface {
	Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE is a command's RunE: runOptions with o and f.
func runE(o commandOptions, f cmdutil.Factory) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error { return runOptions(o, f, cmd, args) }
}

// runOptions runs o's steps in that order; an error from Complete or
// Validate is a usage error (exit 2): nothing was done yet.
func runOptions(o commandOptions, f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	if err := o.Complete(f, cmd, args); err != nil {
		return usageErrorf("%w", err)
	}
	if err := o.Validate(); err != nil {
		return usageErrorf("%w", err)
	}
	return o.Run(cmd.Context())
}

// addDryRunFlag is kubectl's --dry-run (none, client, server; a bare
// --dry-run is client, with kubectl's deprecation warning), completed.
func addDryRunFlag(cmd *cobra.Command) {
	cmdutil.AddDryRunFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions(kubeapi.DryRunNames, cobra.ShellCompDirectiveNoFileComp))
}

// clients are the typed and dynamic clients of f's kubeconfig.
func clients(f cmdutil.Factory) (kubernetes.Interface, dynamic.Interface, error) {
	cs, err := f.KubernetesClientSet()
	if err != nil {
		return nil, nil, err
	}
	dyn, err := f.DynamicClient()
	return cs, dyn, err
}
