package backup

import (
	"io"

	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"

	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
)

// IndexFile is the journal at the root of a backup folder: one JSON record
// per line, appended and synced before the change it announces.
const IndexFile = "index.jsonl"

const indexVersion = 1

// Modes: the run a folder holds, named in its index's first line. A folder
// holds one mode: a rerun resumes it, another mode is refused.
const (
	// ModeInvalidate and ModeDelete: migrate --apply's Secrets (and, for
	// delete, the ServiceAccounts whose references it removes).
	ModeInvalidate = "invalidate"
	ModeDelete     = "delete"
	// ModeSwitch: switch --apply's workloads.
	ModeSwitch = "switch"
)

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

// Record is one line of the index.
type Record struct {
	Op string `json:"op"`

	Version int    `json:"version,omitempty"` // begin
	Mode    string `json:"mode,omitempty"`    // begin
	Date    string `json:"date,omitempty"`    // begin: the invalid-since value

	Kind string `json:"kind,omitempty"`
	// Group is the API group of a kind outside the groups backed up
	// before groups were recorded (core, apps, batch): see TypeKey.
	Group           string `json:"group,omitempty"`
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

// Entry is what the index knows about one object. An index holds an
// entry per object a run touched (100,000 Secrets in a large cluster), so
// an entry keeps only what a later step reads.
type Entry struct {
	// Backup is the latest backup record: a Secret changed by someone
	// else after its first backup gets a second one on a later run. In a
	// lean folder (Folder.Lean) it is dropped from memory once the same
	// process records the object done; the journal keeps it.
	Backup *Record
	// Results are the results of the object's done records.
	Results Results
	// Done is the latest done record, kept in a switch's index only (its
	// template sum is what restore compares); migrate's steps read
	// Results alone.
	Done *Record

	// fresh: Backup was appended by this process.
	fresh bool
}

// Results is the set of an object's done results: a slice, not a map, as
// an object has one or two (a map costs about 200 bytes each).
type Results []string

// Has reports whether result is in the set.
func (rs Results) Has(result string) bool {
	for _, r := range rs {
		if r == result {
			return true
		}
	}
	return false
}

// Index is the replayed journal.
type Index struct {
	Mode string
	Date string
	// Settings are those of the folder's first settings record (nil:
	// none recorded, a folder written before they were).
	Settings map[string]string
	Entries  map[string]*Entry // by TypeKey/Namespace/Name
	Order    []string          // keys in first-seen order

	// strs interns the strings records repeat (kinds, groups,
	// namespaces, results): one copy of each instead of one per record.
	strs map[string]string
}

func (ix *Index) intern(s string) string {
	if s == "" {
		return s
	}
	if v, ok := ix.strs[s]; ok {
		return v
	}
	if ix.strs == nil {
		ix.strs = map[string]string{}
	}
	ix.strs[s] = s
	return s
}

func (ix *Index) entry(typ, ns, name string) *Entry {
	k := typ + "/" + ns + "/" + name
	e := ix.Entries[k]
	if e == nil {
		e = &Entry{}
		ix.Entries[k] = e
		ix.Order = append(ix.Order, k)
	}
	return e
}

// Lookup returns the entry for an object of type typ (TypeKey), or nil.
func (ix *Index) Lookup(typ, ns, name string) *Entry {
	return ix.Entries[typ+"/"+ns+"/"+name]
}

// TypeKey names a kind in the index and in the folder layout: the kind
// alone for the core, apps and batch groups, whose kinds were backed up
// before groups were recorded and whose names no two share (Secret,
// Deployment, ...), so that old backups read as they were written; the
// kind and its group for any other ("Rollout.argoproj.io"), so that an
// API's Service is never taken for the core one.
func TypeKey(kind, group string) string {
	if g := RecordGroup(group); g != "" {
		return kind + "." + g
	}
	return kind
}

// RecordGroup is the group a record carries: none for core, apps and
// batch.
func RecordGroup(group string) string {
	switch group {
	case "", "apps", "batch":
		return ""
	}
	return group
}

// Type is the record's TypeKey.
func (r *Record) Type() string { return TypeKey(r.Kind, r.Group) }

// apply replays one record; fresh: appended by this process, lean: a lean
// folder's (see Folder.Lean).
func (ix *Index) apply(r *Record, fresh, lean bool) {
	switch r.Op {
	case OpBackup, OpDone:
	case OpSettings:
		if ix.Settings == nil {
			ix.Settings = r.Settings
		}
		return
	default:
		return
	}
	rc := *r
	rc.Op, rc.Kind, rc.Group, rc.Namespace, rc.Result = ix.intern(r.Op), ix.intern(r.Kind), ix.intern(r.Group), ix.intern(r.Namespace), ix.intern(r.Result)
	e := ix.entry(rc.Type(), rc.Namespace, rc.Name)
	if rc.Op == OpBackup {
		e.Backup, e.fresh = &rc, fresh
		return
	}
	if !e.Results.Has(rc.Result) {
		e.Results = append(e.Results, rc.Result)
	}
	if ix.Mode == ModeSwitch {
		e.Done = &rc
	}
	if lean && e.fresh {
		// Done in this run: no step of it reads the backup again, and a
		// later run reads it from the journal.
		e.Backup, e.fresh = nil, false
	}
}

// ParseIndex replays a journal. A last line without its newline is a write
// cut short by a kill and is ignored; any other bad line is an error,
// because a backup that cannot be read completely must not be trusted.
func ParseIndex(data []byte) (*Index, error) {
	return ReadIndex(bytes.NewReader(data))
}

// ReadIndex is ParseIndex reading from r line by line, so that the
// journal of 100,000 Secrets (about 50 MB) is never in memory whole.
func ReadIndex(in io.Reader) (*Index, error) {
	ix := &Index{Entries: map[string]*Entry{}}
	seen := false // any byte at all
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	// Whole lines only: a last line without its newline was cut short.
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		seen = seen || len(data) > 0
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF {
			return len(data), nil, nil
		}
		return 0, nil, nil
	})
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
		ix.apply(&r, false, false)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read index: %v", err)
	}
	if line == 0 {
		if !seen {
			return nil, errors.New("index is empty")
		}
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
	if !validKind(r.Kind) {
		return fmt.Errorf("unknown kind %q", r.Kind)
	}
	if r.Group != "" && (r.Group != RecordGroup(r.Group) || !ValidName(r.Group) || !strings.Contains(r.Group, ".")) {
		return fmt.Errorf("bad group %q", r.Group)
	}
	if !ValidName(r.Namespace) || !ValidName(r.Name) {
		return fmt.Errorf("bad object name %q/%q", r.Namespace, r.Name)
	}
	if r.Op == OpBackup {
		if r.File != backupPath(r.Kind, r.Group, r.Namespace, r.Name, r.ResourceVersion) {
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

// ValidName accepts DNS-1123 subdomains, which is what namespaces and
// object names are; it keeps index paths inside the backup folder.
func ValidName(s string) bool {
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
func backupPath(kind, group, ns, name, rv string) string {
	dir := folderOf(kind, group)
	if !validRV(rv) {
		rv = "x"
	}
	return path.Join(dir, ns, name+"@"+rv+".json")
}

// Folder is a backup folder: written by a run (Open), or checked for a
// restore (Inspect).
type Folder struct {
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
	lean    bool
}

// Lean makes the folder forget, from memory, the backup record of each
// object this process backs up once it records the object done: what is
// left per object is its results (about 150 bytes, against 1 KB for the
// whole entry), so a run over 100,000 Secrets does not hold 100,000
// records. The journal on disk is unchanged; a step that reads an
// object's backup after its done record must not use a lean folder.
func (b *Folder) Lean() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lean = true
}

// ErrNotEmpty says the chosen folder holds something other than a backup.
var ErrNotEmpty = errors.New("backup folder is not empty")

// DirError says why a folder cannot hold (or resume) this run's
// backup; the command layer says which flag picks another.
type DirError struct {
	Dir    string
	Reason string
	// Mode is the mode of the run the folder already holds, when that is
	// the problem.
	Mode string
}

func (e *DirError) Error() string { return "backup folder " + e.Dir + " " + e.Reason }

// Open creates dir (0700), or resumes the backup in it when it holds an
// index from an earlier run of the same mode. A folder with other content
// is refused: nothing in it may be mixed up with a backup.
func Open(dir, mode, date string) (*Folder, error) {
	b := &Folder{Dir: dir}
	b.cond = sync.NewCond(&b.mu)
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, fileutil.SecretDirMode); err != nil {
			return nil, fmt.Errorf("create backup folder %s: %v", dir, err)
		}
	case err != nil:
		return nil, &DirError{Dir: dir, Reason: fmt.Sprintf("cannot be read: %v", errors.Unwrap(err))}
	}
	if err := checkFolder(dir); err != nil {
		return nil, err
	}
	idxPath := filepath.Join(dir, IndexFile)
	if len(entries) > 0 {
		data, err := os.ReadFile(idxPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &DirError{Dir: dir, Reason: "is not empty and holds no " + IndexFile}
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %v", idxPath, err)
		}
		ix, err := ParseIndex(data)
		if err != nil {
			return nil, fmt.Errorf("cannot resume from %s: %v", dir, err)
		}
		if ix.Mode != mode {
			return nil, &DirError{Dir: dir, Reason: "holds a " + ix.Mode + " run", Mode: ix.Mode}
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
func (b *Folder) Resumed() bool { return len(b.Index.Order) > 0 }

// Close syncs and closes the index.
func (b *Folder) Close() error {
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
func (b *Folder) Commit(r Record) error {
	return b.append(r, true)
}

// Settle records settings in a folder that has none yet (durably, before
// any change that depends on them) and returns the settings the folder
// holds: the ones just recorded, or an earlier run's, which the caller
// compares with its own.
func (b *Folder) Settle(settings map[string]string) (map[string]string, error) {
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
func (b *Folder) Note(r Record) error {
	return b.append(r, false)
}

// Sync returns once every record appended so far is on disk.
func (b *Folder) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waitSynced(b.seq)
}

func (b *Folder) append(r Record, durable bool) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return errors.New("backup folder " + b.Dir + " was opened for reading only")
	}
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
		b.Index.apply(&r, true, b.lean)
	}
	if !durable {
		return nil
	}
	return b.waitSynced(mine)
}

// waitSynced is called with b.mu held.
func (b *Folder) waitSynced(mine int64) error {
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
func (b *Folder) Entry(typ, ns, name string) *Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.Index.Lookup(typ, ns, name)
	if e == nil {
		return nil
	}
	c := *e
	c.Results = append(Results(nil), e.Results...)
	return &c
}

// Unfinished lists the backups of objects of type typ (TypeKey) that have
// none of the finished results: a run that was killed between a backup and
// its last step.
func (b *Folder) Unfinished(typ string, finished ...string) []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Record
next:
	for _, k := range b.Index.Order {
		e := b.Index.Entries[k]
		if e.Backup == nil || e.Backup.Type() != typ {
			continue
		}
		for _, r := range finished {
			if e.Results.Has(r) {
				continue next
			}
		}
		out = append(out, *e.Backup)
	}
	return out
}

// Save writes a clean manifest of obj, reads it back, checks it, and records
// it in the index. Only after Save returns may obj be changed.
func (b *Folder) Save(obj runtime.Object) (*Record, error) {
	recs, errs := b.SaveBatch([]runtime.Object{obj})
	return recs[0], errs[0]
}

// SaveBatch is Save for many objects: files are written by several
// goroutines at once, made durable together, read back and checked, then
// their records are appended and synced once. An object whose backup
// failed has a non-nil error and must not change.
func (b *Folder) SaveBatch(objs []runtime.Object) ([]*Record, []error) {
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
func (b *Folder) writeNew(full string, data []byte, sum string) error {
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
