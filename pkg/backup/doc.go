// Package backup owns the backup folder that migrate, switch, rotate and
// restore share: the folder (0700, refused when others may write it), its
// journal (index.jsonl: a header naming the run's mode, then backup, done
// and settings records, appended and synced before the change they
// announce), the manifests it holds (clean, re-appliable, one file per
// object, checked by sha256 when written and whenever read), resuming a
// run from its journal, and the outcomes a run reports per object.
//
// It is kind-agnostic: it stores any API object by its kind, namespace,
// name and bytes, and never interprets one. It must not import pkg/legacy,
// pkg/switcher, pkg/workload or pkg/cmd; what a record's result means is
// theirs.
package backup
