// Package fleet runs one read-only check over many clusters, one kubeconfig
// context each, and gathers the answers into one report.
//
// Every context gets its own rest config, HTTP transport, client and
// discovery: nothing that remembers a cluster's answers is shared between
// contexts, so one cluster's data can never be reported under another's
// name. Contexts that reach the same cluster (the same kube-system
// namespace uid) are run once and listed as aliases. One cluster that is
// unreachable, refuses the credentials or runs out of time is reported as
// such and never stops the others.
//
// It owns the run over the contexts, not the check: pkg/cmd hands it the
// check (migrate's audit, doctor, switch's plan) as a Func. So it knows
// nothing of those commands' domains: it must not import pkg/legacy,
// pkg/switcher, pkg/backup, pkg/workload, pkg/doctor or pkg/cmd.
package fleet
