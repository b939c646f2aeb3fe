package legacy

import (
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"

	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
)

// IndexFile is the journal at the root of a backup folder: one JSON record
// per line, appended and synced before the change it announces.
const IndexFile = "index.jsonl"

const indexVersion = 1

// Record ops.
const (
	OpBegin  = "begin"
	OpBackup = "backup"
	OpDone   = "done"
	// OpSettings records the settings a run's changes depend on (switch:
	// the projected token's lifetime and audience), once per folder, so
	// that a rerun into the folder cannot finish it with other settings.
	OpSettings = "settings"
)

// Results recorded by OpDone.
const (
	ResultInvalidated = "invalidated"
	ResultDeleted     = "deleted"     // the Secret is gone; the SA reference may remain
	ResultRefRemoved  = "ref-removed" // the SA no longer lists the Secret
)

// Kinds of backed-up objects. migrate backs up Secrets and
// ServiceAccounts; switch backs up the workloads whose pod templates it
// rewrites.
const (
	KindSecret                = "Secret"
	KindServiceAccount        = "ServiceAccount"
	KindDeployment            = "Deployment"
	KindStatefulSet           = "StatefulSet"
	KindDaemonSet             = "DaemonSet"
	KindReplicaSet            = "ReplicaSet"
	KindReplicationController = "ReplicationController"
	KindCronJob               = "CronJob"
)

// ResultSwitched is recorded by switch once a workload's template is
// rewritten; the record's Template is the sha256 of the template the
// server returned, which restore requires to find unchanged.
const ResultSwitched = "switched"

// backupDirs is the folder of each kind inside a backup.
var backupDirs = map[string]string{
	KindSecret:                "secrets",
	KindServiceAccount:        "serviceaccounts",
	KindDeployment:            "deployments",
	KindStatefulSet:           "statefulsets",
	KindDaemonSet:             "daemonsets",
	KindReplicaSet:            "replicasets",
	KindReplicationController: "replicationcontrollers",
	KindCronJob:               "cronjobs",
}

// IsWorkloadKind reports whether kind is one switch backs up.
func IsWorkloadKind(kind string) bool {
	_, ok := backupDirs[kind]
	return ok && kind != KindSecret && kind != KindServiceAccount
}

// Record is one line of the index.
type Record struct {
	Op string `json:"op"`

	Version int    `json:"version,omitempty"` // begin
	Mode    string `json:"mode,omitempty"`    // begin
	Date    string `json:"date,omitempty"`    // begin: the invalid-since value

	Kind            string `json:"kind,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	File            string `json:"file,omitempty"`
	SHA256          string `json:"sha256,omitempty"`
	Result          string `json:"result,omitempty"`
	// Template is, on a done record of switch, the sha256 of the pod
	// template (JSON as TemplateSum computes it) after the switch.
	Template string `json:"template,omitempty"`
	// Settings, on a settings record.
	Settings map[string]string `json:"settings,omitempty"`
}

// Entry is what the index knows about one object.
type Entry struct {
	// Backup is the latest backup record: a Secret changed by someone
	// else after its first backup gets a second one on a later run.
	Backup  *Record
	Results map[string]bool
	// Done is the latest done record.
	Done *Record
}

// Index is the replayed journal.
type Index struct {
	Mode string
	Date string
	// Settings are those of the folder's first settings record (nil:
	// none recorded, a folder written before they were).
	Settings map[string]string
	Entries  map[string]*Entry // by Kind/Namespace/Name
	Order    []string          // keys in first-seen order
}

func (ix *Index) entry(kind, ns, name string) *Entry {
	k := kind + "/" + ns + "/" + name
	e := ix.Entries[k]
	if e == nil {
		e = &Entry{Results: map[string]bool{}}
		ix.Entries[k] = e
		ix.Order = append(ix.Order, k)
	}
	return e
}

// Lookup returns the entry for an object, or nil.
func (ix *Index) Lookup(kind, ns, name string) *Entry {
	return ix.Entries[kind+"/"+ns+"/"+name]
}

func (ix *Index) apply(r *Record) {
	switch r.Op {
	case OpBackup:
		e := ix.entry(r.Kind, r.Namespace, r.Name)
		rc := *r
		e.Backup = &rc
	case OpDone:
		e := ix.entry(r.Kind, r.Namespace, r.Name)
		e.Results[r.Result] = true
		rc := *r
		e.Done = &rc
	case OpSettings:
		if ix.Settings == nil {
			ix.Settings = r.Settings
		}
	}
}

// ParseIndex replays a journal. A last line without its newline is a write
// cut short by a kill and is ignored; any other bad line is an error,
// because a backup that cannot be read completely must not be trusted.
func ParseIndex(data []byte) (*Index, error) {
	ix := &Index{Entries: map[string]*Entry{}}
	if len(data) == 0 {
		return nil, errors.New("index is empty")
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		data = data[:bytes.LastIndexByte(data, '\n')+1]
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var r Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("index line %d is not a record: %v", line, text.OneLine(err.Error(), 0))
		}
		if line == 1 {
			if r.Op != OpBegin || r.Version != indexVersion {
				return nil, fmt.Errorf("index line 1 is not a version %d header", indexVersion)
			}
			if r.Mode != ModeInvalidate && r.Mode != ModeDelete && r.Mode != ModeSwitch {
				return nil, fmt.Errorf("index header names unknown mode %q", r.Mode)
			}
			ix.Mode, ix.Date = r.Mode, r.Date
			continue
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("index line %d: %v", line, err)
		}
		ix.apply(&r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read index: %v", err)
	}
	if line == 0 {
		return nil, errors.New("index has no complete line")
	}
	return ix, nil
}

func (r *Record) validate() error {
	switch r.Op {
	case OpBackup, OpDone:
	case OpSettings:
		if len(r.Settings) == 0 {
			return errors.New("a settings record without settings")
		}
		return nil
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	if _, ok := backupDirs[r.Kind]; !ok {
		return fmt.Errorf("unknown kind %q", r.Kind)
	}
	if !validName(r.Namespace) || !validName(r.Name) {
		return fmt.Errorf("bad object name %q/%q", r.Namespace, r.Name)
	}
	if r.Op == OpBackup {
		if r.File != backupPath(r.Kind, r.Namespace, r.Name, r.ResourceVersion) {
			return fmt.Errorf("%s %s/%s: file %q is not where a backup of it belongs", r.Kind, r.Namespace, r.Name, r.File)
		}
		if len(r.SHA256) != 64 || strings.ToLower(r.SHA256) != r.SHA256 {
			return fmt.Errorf("%s %s/%s: sha256 is not 64 lowercase hex digits", r.Kind, r.Namespace, r.Name)
		}
		if _, err := hex.DecodeString(r.SHA256); err != nil {
			return fmt.Errorf("%s %s/%s: sha256 is not 64 lowercase hex digits", r.Kind, r.Namespace, r.Name)
		}
	}
	return nil
}

// validName accepts DNS-1123 subdomains, which is what namespaces and
// object names are; it keeps index paths inside the backup folder.
func validName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}

func validRV(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// backupPath is where a backup of an object at a resourceVersion lives,
// relative to the folder, slash-separated.
func backupPath(kind, ns, name, rv string) string {
	dir := backupDirs[kind]
	if !validRV(rv) {
		rv = "x"
	}
	return path.Join(dir, ns, name+"@"+rv+".json")
}

// Backup is a backup folder being written by apply.
type Backup struct {
	Dir   string
	Index *Index

	dirs sync.Map // folders known to exist

	mu      sync.Mutex
	cond    *sync.Cond
	f       *os.File
	seq     int64
	synced  int64
	syncing bool
	err     error
}

// ErrNotEmpty says the chosen folder holds something other than a backup.
var ErrNotEmpty = errors.New("backup folder is not empty")

// OpenBackup creates dir (0700), or resumes the backup in it when it holds
// an index from an earlier run of the same mode. A folder with other
// BackupDirError says why a folder cannot hold (or resume) this run's
// backup; the command layer says which flag picks another.
type BackupDirError struct {
	Dir    string
	Reason string
	// Mode is the mode of the run the folder already holds, when that is
	// the problem.
	Mode string
}

func (e *BackupDirError) Error() string { return "backup folder " + e.Dir + " " + e.Reason }

// content is refused: nothing in it may be mixed up with a backup.
func OpenBackup(dir, mode, date string) (*Backup, error) {
	b := &Backup{Dir: dir}
	b.cond = sync.NewCond(&b.mu)
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, fileutil.SecretDirMode); err != nil {
			return nil, fmt.Errorf("create backup folder %s: %v", dir, err)
		}
	case err != nil:
		return nil, &BackupDirError{Dir: dir, Reason: fmt.Sprintf("cannot be read: %v", errors.Unwrap(err))}
	}
	if err := checkFolder(dir); err != nil {
		return nil, err
	}
	idxPath := filepath.Join(dir, IndexFile)
	if len(entries) > 0 {
		data, err := os.ReadFile(idxPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &BackupDirError{Dir: dir, Reason: "is not empty and holds no " + IndexFile}
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %v", idxPath, err)
		}
		ix, err := ParseIndex(data)
		if err != nil {
			return nil, fmt.Errorf("cannot resume from %s: %v", dir, err)
		}
		if ix.Mode != mode {
			return nil, &BackupDirError{Dir: dir, Reason: "holds a " + ix.Mode + " run", Mode: ix.Mode}
		}
		// A kill mid-write leaves a partial last line: cut it before
		// appending so the journal stays line-aligned.
		if n := bytes.LastIndexByte(data, '\n') + 1; n != len(data) {
			if err := os.Truncate(idxPath, int64(n)); err != nil {
				return nil, fmt.Errorf("repair %s: %v", idxPath, err)
			}
		}
		f, err := os.OpenFile(idxPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %v", idxPath, err)
		}
		b.f, b.Index = f, ix
		return b, nil
	}
	f, err := os.OpenFile(idxPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, fileutil.SecretFileMode)
	if err != nil {
		return nil, fmt.Errorf("create %s: %v", idxPath, err)
	}
	b.f = f
	b.Index = &Index{Mode: mode, Date: date, Entries: map[string]*Entry{}}
	if err := b.Commit(Record{Op: OpBegin, Version: indexVersion, Mode: mode, Date: date}); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// Resumed reports whether the folder held an earlier run.
func (b *Backup) Resumed() bool { return len(b.Index.Order) > 0 }

// Close syncs and closes the index.
func (b *Backup) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	serr := b.f.Sync()
	if err := b.f.Close(); err != nil {
		return err
	}
	return serr
}

// Commit appends r to the index and returns once it is on disk. Concurrent
// callers share one fsync (group commit), so a pool of workers does not
// queue behind the disk.
func (b *Backup) Commit(r Record) error {
	return b.append(r, true)
}

// Settle records settings in a folder that has none yet (durably, before
// any change that depends on them) and returns the settings the folder
// holds: the ones just recorded, or an earlier run's, which the caller
// compares with its own.
func (b *Backup) Settle(settings map[string]string) (map[string]string, error) {
	if b.Index.Settings != nil {
		return b.Index.Settings, nil
	}
	if err := b.Commit(Record{Op: OpSettings, Settings: settings}); err != nil {
		return nil, err
	}
	b.Index.Settings = settings
	return settings, nil
}

// Note appends r without waiting for the disk. Done records use it: a run
// that loses one finds the change on the server and records it again, so
// only backup records must be durable before the change they announce.
func (b *Backup) Note(r Record) error {
	return b.append(r, false)
}

// Sync returns once every record appended so far is on disk.
func (b *Backup) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waitSynced(b.seq)
}

func (b *Backup) append(r Record, durable bool) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if _, err := b.f.Write(line); err != nil {
		b.err = fmt.Errorf("write %s: %v", IndexFile, err)
		return b.err
	}
	b.seq++
	mine := b.seq
	if r.Op != OpBegin {
		b.Index.apply(&r)
	}
	if !durable {
		return nil
	}
	return b.waitSynced(mine)
}

// waitSynced is called with b.mu held.
func (b *Backup) waitSynced(mine int64) error {
	for b.synced < mine && b.err == nil {
		if b.syncing {
			b.cond.Wait()
			continue
		}
		b.syncing = true
		target := b.seq
		b.mu.Unlock()
		err := b.f.Sync()
		b.mu.Lock()
		b.syncing = false
		if err != nil {
			b.err = fmt.Errorf("sync %s: %v", IndexFile, err)
		} else if target > b.synced {
			b.synced = target
		}
		b.cond.Broadcast()
	}
	return b.err
}

// Entry returns the index entry of an object, or nil.
func (b *Backup) Entry(kind, ns, name string) *Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.Index.Lookup(kind, ns, name)
	if e == nil {
		return nil
	}
	c := *e
	c.Results = map[string]bool{}
	for k, v := range e.Results {
		c.Results[k] = v
	}
	return &c
}

// Pending lists Secrets backed up but not finished: a run that was killed
// between its backup and its last step.
func (b *Backup) Pending() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Record
	for _, k := range b.Index.Order {
		e := b.Index.Entries[k]
		if e.Backup == nil || e.Backup.Kind != KindSecret {
			continue
		}
		if e.Results[ResultInvalidated] || e.Results[ResultRefRemoved] {
			continue
		}
		out = append(out, *e.Backup)
	}
	return out
}

// Save writes a clean manifest of obj, reads it back, checks it, and records
// it in the index. Only after Save returns may obj be changed.
func (b *Backup) Save(obj any) (*Record, error) {
	recs, errs := b.SaveBatch([]any{obj})
	return recs[0], errs[0]
}

// SaveBatch is Save for many objects: files are written by several
// goroutines at once, made durable together, read back and checked, then
// their records are appended and synced once. An object whose backup
// failed has a non-nil error and must not change.
func (b *Backup) SaveBatch(objs []any) ([]*Record, []error) {
	recs := make([]*Record, len(objs))
	errs := make([]error, len(objs))
	fail := func(err error) ([]*Record, []error) {
		for i := range recs {
			recs[i], errs[i] = nil, err
		}
		return recs, errs
	}
	kubeapi.Parallel(len(objs), saveWorkers, func(i int) {
		r, data, err := manifest(objs[i])
		if err != nil {
			errs[i] = err
			return
		}
		full := filepath.Join(b.Dir, filepath.FromSlash(r.File))
		if err := b.writeNew(full, data, r.SHA256); err != nil {
			errs[i] = fmt.Errorf("back up %s %s/%s: %v", r.Kind, r.Namespace, r.Name, err)
			return
		}
		recs[i] = r
	})
	// The files and their new names must be durable before any record.
	var files []string
	dirs := map[string]bool{b.Dir: true}
	for _, r := range recs {
		if r == nil {
			continue
		}
		full := filepath.Join(b.Dir, filepath.FromSlash(r.File))
		files = append(files, full)
		for d := filepath.Dir(full); d != b.Dir && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	if err := syncAll(b.Dir, files, dirList); err != nil {
		return fail(fmt.Errorf("back up: sync %s: %v", b.Dir, err))
	}
	kubeapi.Parallel(len(recs), saveWorkers, func(i int) {
		if r := recs[i]; r != nil {
			if err := checkSum(b.Dir, r); err != nil {
				recs[i], errs[i] = nil, fmt.Errorf("back up %s %s/%s: read-back check failed: %v", r.Kind, r.Namespace, r.Name, err)
			}
		}
	})
	for i, r := range recs {
		if r == nil {
			continue
		}
		if err := b.Note(*r); err != nil {
			recs[i], errs[i] = nil, err
		}
	}
	if err := b.Sync(); err != nil {
		return fail(err)
	}
	return recs, errs
}

const saveWorkers = 8

// writeNew writes a 0600 file in place, unsynced (SaveBatch syncs the
// batch): one directory operation instead of a temporary file's three,
// because concurrent workers queue on the folder's lock. A file is trusted
// only once the index records it, so
// a file cut short by a crash is never read: it is not in the index, and
// the next run replaces it here. An existing file with the wanted content
// (written by a run killed before its record) is kept.
func (b *Backup) writeNew(full string, data []byte, sum string) error {
	dir := filepath.Dir(full)
	if _, ok := b.dirs.Load(dir); !ok {
		if err := os.MkdirAll(dir, fileutil.SecretDirMode); err != nil {
			return err
		}
		b.dirs.Store(dir, true)
	}
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileutil.SecretFileMode)
		if errors.Is(err, fs.ErrExist) && attempt == 0 {
			if got, rerr := os.ReadFile(full); rerr == nil && sha256Hex(got) == sum {
				return nil
			}
			if err := os.Remove(full); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// manifest renders a re-appliable object: no uid, resourceVersion,
// managedFields, owner references or status.
func manifest(obj any) (*Record, []byte, error) {
	var clean any
	var meta *metav1.ObjectMeta
	r := &Record{Op: OpBackup}
	switch o := obj.(type) {
	case *corev1.Secret:
		r.Kind, meta = KindSecret, &o.ObjectMeta
		clean = &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: KindSecret},
			ObjectMeta: cleanMeta(&o.ObjectMeta),
			Type:       o.Type,
			Data:       o.Data,
			Immutable:  o.Immutable,
		}
	case *corev1.ServiceAccount:
		r.Kind, meta = KindServiceAccount, &o.ObjectMeta
		clean = &corev1.ServiceAccount{
			TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: KindServiceAccount},
			ObjectMeta:                   cleanMeta(&o.ObjectMeta),
			Secrets:                      o.Secrets,
			ImagePullSecrets:             o.ImagePullSecrets,
			AutomountServiceAccountToken: o.AutomountServiceAccountToken,
		}
	case *appsv1.Deployment:
		r.Kind, meta = KindDeployment, &o.ObjectMeta
		clean = &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: r.Kind}, ObjectMeta: cleanMeta(meta), Spec: o.Spec}
	case *appsv1.StatefulSet:
		r.Kind, meta = KindStatefulSet, &o.ObjectMeta
		clean = &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: r.Kind}, ObjectMeta: cleanMeta(meta), Spec: o.Spec}
	case *appsv1.DaemonSet:
		r.Kind, meta = KindDaemonSet, &o.ObjectMeta
		clean = &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: r.Kind}, ObjectMeta: cleanMeta(meta), Spec: o.Spec}
	case *appsv1.ReplicaSet:
		r.Kind, meta = KindReplicaSet, &o.ObjectMeta
		clean = &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: r.Kind}, ObjectMeta: cleanMeta(meta), Spec: o.Spec}
	case *corev1.ReplicationController:
		r.Kind, meta = KindReplicationController, &o.ObjectMeta
		clean = &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: r.Kind}, ObjectMeta: cleanMeta(meta), Spec: o.Spec}
	case *batchv1.CronJob:
		r.Kind, meta = KindCronJob, &o.ObjectMeta
		clean = &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: r.Kind}, ObjectMeta: cleanMeta(meta), Spec: o.Spec}
	default:
		return nil, nil, fmt.Errorf("cannot back up a %T", obj)
	}
	r.Namespace, r.Name, r.UID, r.ResourceVersion = meta.Namespace, meta.Name, string(meta.UID), meta.ResourceVersion
	if !validName(r.Namespace) || !validName(r.Name) || !validRV(r.ResourceVersion) {
		return nil, nil, fmt.Errorf("cannot back up %s %s/%s: unexpected name or resourceVersion", r.Kind, r.Namespace, r.Name)
	}
	// JSON, which kubectl applies as it is: rendering YAML costs several
	// times more CPU, which on a small control plane host slows the
	// apiserver the run is waiting for.
	data, err := json.MarshalIndent(clean, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	data = append(data, '\n')
	r.SHA256 = sha256Hex(data)
	r.File = backupPath(r.Kind, r.Namespace, r.Name, r.ResourceVersion)
	return r, data, nil
}

func cleanMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: m.Labels, Annotations: m.Annotations}
}

func checkSum(dir string, r *Record) error {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.File)))
	if err != nil {
		return err
	}
	if sha256Hex(data) != r.SHA256 {
		return fmt.Errorf("%s does not hold what was written", r.File)
	}
	return nil
}

// verifyFile checks the file of a backup record: a regular file (no
// symlink) inside dir whose sha256 matches and that holds that object.
func verifyFile(dir string, r *Record) error {
	_, err := readBackup(dir, r)
	return err
}

// readBackup returns the checked manifest of a backup record.
func readBackup(dir string, r *Record) ([]byte, error) {
	rel := filepath.FromSlash(r.File)
	full := filepath.Join(dir, rel)
	// Every component is checked, so a symlinked folder cannot point the
	// read elsewhere.
	shown := ""
	for _, part := range strings.Split(r.File, "/") {
		shown = path.Join(shown, part)
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(shown)))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s is missing", r.File)
			}
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symlink; a backup holds only regular files", shown)
		}
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", r.File)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil, err
	}
	if sha256Hex(data) != r.SHA256 {
		return nil, fmt.Errorf("%s does not match the sha256 recorded in %s: the backup was changed after it was written", r.File, IndexFile)
	}
	var head struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s is not a manifest: %v", r.File, text.OneLine(err.Error(), 0))
	}
	if head.Kind != r.Kind || head.Metadata.Namespace != r.Namespace || head.Metadata.Name != r.Name {
		return nil, fmt.Errorf("%s holds %s %s/%s, not %s %s/%s", r.File, head.Kind, head.Metadata.Namespace, head.Metadata.Name, r.Kind, r.Namespace, r.Name)
	}
	return data, nil
}

// TemplateSum is the sha256 of a pod template as JSON: what a switch
// record holds, so restore can tell the template it wrote from one changed
// since.
func TemplateSum(t *corev1.PodTemplateSpec) string {
	data, _ := json.Marshal(t)
	return sha256Hex(data)
}

// checkFolder refuses a backup folder that others could have changed.
func checkFolder(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("backup folder %s: %v", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("backup folder %s is a symlink; give the real folder", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("backup folder %s is not a folder", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("backup folder %s is writable by group or others (mode %04o): anyone could have changed it; fix with chmod 700 %s after checking its content", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// Read returns the checked manifest of a backup record of this folder.
func (b *Backup) Read(r *Record) ([]byte, error) { return readBackup(b.Dir, r) }
