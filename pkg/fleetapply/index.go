package fleetapply

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
)

// IndexFile is the fleet index at the top of a fleet backup folder. A
// folder holding it is a fleet folder; each cluster's own backup is the
// sub-folder its entry names.
const IndexFile = "fleet-index.json"

// IndexKind is the index's kind, so that a reader can tell it apart.
const IndexKind = "FleetBackupIndex"

// States of a cluster in the index.
const (
	// StateStarted: the cluster's change began (its folder may hold an
	// interrupted run, which a rerun finishes); also a cluster whose
	// watch saw a client or whose change failed.
	StateStarted = "started"
	// StateDone: changed, and its watch was quiet: a rerun skips it.
	StateDone = "done"
)

// Index lists the clusters of a fleet folder.
type Index struct {
	Kind string `json:"kind"`
	// Mode is the change every cluster's backup holds (invalidate).
	Mode     string  `json:"mode"`
	Clusters []Entry `json:"clusters"`
}

// Entry is one cluster of the index.
type Entry struct {
	// UID is the uid of the cluster's kube-system namespace: the
	// cluster's identity and the name of its sub-folder.
	UID string `json:"uid"`
	// Context and Server are how the run reached it (for people, and
	// for restore's default context).
	Context string `json:"context"`
	Server  string `json:"server,omitempty"`
	Folder  string `json:"folder"`
	State   string `json:"state,omitempty"`
	// Note says why a started cluster is not done (the stop reason).
	Note string `json:"note,omitempty"`
}

// uidPattern is what a kube-system uid may be to name a folder: the
// apiserver gives every object a UUID when it is created
// (k8s.io/apiserver@v0.37.2 pkg/registry/rest/meta.go,
// FillObjectMetaSystemFields: meta.SetUID(uuid.NewUUID())); anything else
// (a path separator, "..") is refused.
var uidPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,62}$`)

// FolderName is the sub-folder of the cluster whose kube-system uid is uid.
// Context names hold "/" and ":" (EKS ARNs, GKE names) and are not the
// cluster's identity; kube-system's uid is, as multi-cluster tools take it:
// Karmada (karmada-io/karmada pkg/util/cluster.go, ObtainClusterID: the
// kube-system Namespace's UID), OpenTelemetry's k8s.cluster.uid
// (semantic-conventions model/k8s: "set to the UID of the kube-system
// namespace"), and sig-multicluster's KEP-2149 (ClusterId) suggests it
// for cluster.clusterset.k8s.io. kube-system cannot be deleted
// (k8s.io/apiserver@v0.37.2 pkg/admission/plugin/namespace/lifecycle/
// admission.go, Register: default, kube-system and kube-public are the
// immortal namespaces), so its uid lasts as long as the cluster's etcd.
func FolderName(uid string) (string, error) {
	if !uidPattern.MatchString(uid) {
		return "", fmt.Errorf("cluster uid %q cannot name a folder", uid)
	}
	return uid, nil
}

// IsFleetFolder reports whether dir holds a fleet index.
func IsFleetFolder(dir string) bool {
	fi, err := os.Lstat(filepath.Join(dir, IndexFile))
	return err == nil && fi.Mode().IsRegular()
}

// ReadIndex reads dir's index; a missing index is fs.ErrNotExist.
func ReadIndex(dir string) (*Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, IndexFile), err)
	}
	if ix.Kind != IndexKind {
		return nil, fmt.Errorf("%s: kind %q, want %s", filepath.Join(dir, IndexFile), ix.Kind, IndexKind)
	}
	for _, e := range ix.Clusters {
		if name, err := FolderName(e.UID); err != nil || e.Folder != name {
			return nil, fmt.Errorf("%s: entry %q names folder %q: each cluster's folder is its uid", filepath.Join(dir, IndexFile), e.UID, e.Folder)
		}
	}
	return &ix, nil
}

// OpenIndex reads dir's index, or starts one for mode when dir is new or
// empty; a folder that holds other files and no index is refused, as is
// an index of another mode.
func OpenIndex(dir, mode string) (*Index, error) {
	ix, err := ReadIndex(dir)
	switch {
	case err == nil:
		if ix.Mode != mode {
			return nil, fmt.Errorf("fleet folder %s holds a %s run", dir, ix.Mode)
		}
		return ix, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("folder %s is not empty and holds no %s: not a fleet backup", dir, IndexFile)
	}
	return &Index{Kind: IndexKind, Mode: mode}, nil
}

// Save writes the index into dir (0600, the folder 0700), atomically.
func (ix *Index) Save(dir string) error {
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	return fileutil.WriteSecretFile(filepath.Join(dir, IndexFile), append(b, '\n'), true)
}

// Entry is the entry of uid, nil when absent.
func (ix *Index) Entry(uid string) *Entry {
	for i := range ix.Clusters {
		if ix.Clusters[i].UID == uid {
			return &ix.Clusters[i]
		}
	}
	return nil
}

// Add records the cluster uid reached through context at server (an entry
// already there keeps its state; its context and server are updated) and
// returns its entry.
func (ix *Index) Add(uid, context, server string) (*Entry, error) {
	name, err := FolderName(uid)
	if err != nil {
		return nil, err
	}
	if e := ix.Entry(uid); e != nil {
		e.Context, e.Server = context, server
		return e, nil
	}
	ix.Clusters = append(ix.Clusters, Entry{UID: uid, Context: context, Server: server, Folder: name})
	sort.SliceStable(ix.Clusters, func(i, j int) bool { return ix.Clusters[i].Context < ix.Clusters[j].Context })
	return ix.Entry(uid), nil
}

// Select returns the entries whose context is among contexts (all with
// none); a context the index does not list is an error.
func (ix *Index) Select(contexts []string) ([]Entry, error) {
	if len(contexts) == 0 {
		return append([]Entry(nil), ix.Clusters...), nil
	}
	var out []Entry
	for _, c := range contexts {
		found := false
		for _, e := range ix.Clusters {
			if e.Context == c {
				out = append(out, e)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("context %s is not in the fleet folder's index", c)
		}
	}
	return out, nil
}

// IdentityError: a context now reaches another cluster than the one whose
// backup the folder names.
type IdentityError struct {
	Context, Want, Got string
}

func (e *IdentityError) Error() string {
	got := e.Got
	if got == "" {
		got = "a cluster whose kube-system uid cannot be read"
	}
	return fmt.Sprintf("context %s now reaches cluster %s, not cluster %s whose backup this is: nothing restored there", e.Context, got, e.Want)
}

// CheckIdentity is nil when the context reaches the cluster the entry
// names (got is the kube-system uid it reaches now).
func CheckIdentity(e Entry, context, got string) error {
	if got == "" || got != e.UID {
		return &IdentityError{Context: context, Want: e.UID, Got: got}
	}
	return nil
}
