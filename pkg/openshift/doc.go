// Package openshift follows and changes OpenShift's service-account issuer:
// the kube-apiserver operator's status (revisions, per-node installs), a
// watch-based waiter for its rollouts, and issuer rotation with a backup of
// the Authentication object so it can be rolled back.
//
// It owns what this tool reads and writes of
// authentications.config.openshift.io and
// kubeapiservers.operator.openshift.io. It knows no flags and prints
// nothing: a rotation reports its steps and stops with the stage it
// reached, and pkg/cmd words both; its dry run is kubectl's
// cmdutil.DryRunStrategy, as everywhere (pkg/kubeapi).
//
// It must not import pkg/cmd, pkg/hypershift (HyperShift's signing keys
// are another product's rotation), pkg/fleet, or anything of migrate's
// (pkg/legacy, pkg/switcher, pkg/backup); it restarts workloads only
// through pkg/restart.
package openshift
