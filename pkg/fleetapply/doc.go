// Package fleetapply changes many clusters in cluster waves: the wave plan
// (one cluster first, then growing), the stop rule, the loop, resume, and
// the fleet backup folder (one backup folder per cluster, named by the uid
// of its kube-system namespace, under one top folder with an index), with
// the check that a context still reaches the cluster a folder names.
//
// It knows nothing of flags, terminals or what a cluster's change is:
// pkg/cmd hands it the change of one cluster (migrate's apply and its
// watch) as Options.Change. So it must not import pkg/legacy, pkg/guard,
// pkg/backup, pkg/fleet or pkg/cmd.
package fleetapply
