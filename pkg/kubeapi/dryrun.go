package kubeapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// DryRunName is the dry-run strategy as kubectl's --dry-run spells it and as
// the printed documents carry it ("none", "client", "server"): JSON output
// keeps these strings although the strategy is an int.
func DryRunName(s cmdutil.DryRunStrategy) string {
	switch s {
	case cmdutil.DryRunClient:
		return "client"
	case cmdutil.DryRunServer:
		return "server"
	default:
		return "none"
	}
}

// DryRunNames are the values --dry-run takes, for completion.
var DryRunNames = []string{"none", "client", "server"}

// DryRunAll is the dryRun of a write's options: [All] on a server dry run,
// so the apiserver admits and validates the write and stores nothing; nil
// otherwise (a client dry run sends nothing at all).
func DryRunAll(s cmdutil.DryRunStrategy) []string {
	if s == cmdutil.DryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}
