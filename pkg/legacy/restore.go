package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Restore outcome results.
const (
	OutRecreated    = "recreated"
	OutLabelRemoved = "re-enabled"
	OutUnchanged    = "unchanged"
	OutRefRestored  = "reference-restored"
)

// RestoreOptions say what restore does.
type RestoreOptions struct {
	// Only limits the restore to these NAMESPACE/NAME Secrets.
	Only    []string
	DryRun  string
	Workers int
	Done    func(Outcome)
}

// Restorable is a checked backup folder: every file it will read matches
// the index, and nothing in it is a symlink.
type Restorable struct {
	Dir     string
	Index   *Index
	secrets []restoreItem
	sas     map[string]*corev1.ServiceAccount // by namespace/name
}

type restoreItem struct {
	rec    *Record
	secret *corev1.Secret
}

// OpenRestore checks a backup folder completely before anything is
// changed: folder permissions, symlinks anywhere inside, the index, and the
// sha256 and identity of every file that the restore of `only` needs.
func OpenRestore(dir string, only []string) (*Restorable, error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup folder %s does not exist", dir)
		}
		return nil, fmt.Errorf("backup folder %s cannot be read: %v", dir, errors.Unwrap(err))
	}
	if err := checkFolder(dir); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("backup folder %s cannot be read: %v", dir, errors.Unwrap(err))
		}
		if d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(dir, p)
			return fmt.Errorf("backup folder %s holds a symlink (%s): a backup holds only regular files; refusing it", dir, rel)
		}
		if d.IsDir() && p != dir {
			if err := checkFolder(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no %s: not a backup written by migrate --apply", dir, IndexFile)
		}
		return nil, fmt.Errorf("read %s: %v", filepath.Join(dir, IndexFile), errors.Unwrap(err))
	}
	ix, err := ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %v", dir, err)
	}
	want := map[string]bool{}
	for _, o := range only {
		ns, name, ok := strings.Cut(o, "/")
		if !ok || !validName(ns) || !validName(name) {
			return nil, fmt.Errorf("--only %q: want NAMESPACE/NAME", o)
		}
		if e := ix.Lookup(KindSecret, ns, name); e == nil || e.Backup == nil {
			return nil, fmt.Errorf("--only %s: the backup holds no such Secret", o)
		}
		want[o] = true
	}
	r := &Restorable{Dir: dir, Index: ix, sas: map[string]*corev1.ServiceAccount{}}
	for _, k := range ix.Order {
		e := ix.Entries[k]
		if e.Backup == nil || e.Backup.Kind != KindSecret {
			continue
		}
		if len(want) > 0 && !want[e.Backup.Namespace+"/"+e.Backup.Name] {
			continue
		}
		data, err := readBackup(dir, e.Backup)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %v; nothing was restored", dir, err)
		}
		s, err := decodeSecret(data)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %s: %v; nothing was restored", dir, e.Backup.File, err)
		}
		r.secrets = append(r.secrets, restoreItem{rec: e.Backup, secret: s})
		saName := s.Annotations[corev1.ServiceAccountNameKey]
		saKey := s.Namespace + "/" + saName
		if _, done := r.sas[saKey]; done {
			continue
		}
		if se := ix.Lookup(KindServiceAccount, s.Namespace, saName); se != nil && se.Backup != nil {
			data, err := readBackup(dir, se.Backup)
			if err != nil {
				return nil, fmt.Errorf("backup %s: %v; nothing was restored", dir, err)
			}
			var sa corev1.ServiceAccount
			if err := yaml.UnmarshalStrict(data, &sa); err != nil {
				return nil, fmt.Errorf("backup %s: %s: %v; nothing was restored", dir, se.Backup.File, oneLine(err))
			}
			r.sas[saKey] = &sa
		}
	}
	return r, nil
}

// Namespaces lists the namespaces the restore touches.
func (r *Restorable) Namespaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range r.secrets {
		if ns := it.secret.Namespace; !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	sort.Strings(out)
	return out
}

// Count is how many Secrets the restore covers.
func (r *Restorable) Count() int { return len(r.secrets) }

func decodeSecret(data []byte) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("not a Secret manifest: %v", oneLine(err))
	}
	if s.Type != corev1.SecretTypeServiceAccountToken {
		return nil, fmt.Errorf("%s/%s is not a service-account-token Secret", s.Namespace, s.Name)
	}
	return &s, nil
}

// Restore brings every covered Secret back to its backed-up state: a
// deleted one is re-created with its original data, an invalidated one
// loses the invalid-since label, and ServiceAccounts list them again. It is
// idempotent; an object that someone else replaced is left alone.
func Restore(ctx context.Context, client kubernetes.Interface, r *Restorable, opts RestoreOptions) []Outcome {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	var dry []string
	if opts.DryRun == DryRunServer {
		dry = []string{metav1.DryRunAll}
	}
	var (
		mu  sync.Mutex
		out []Outcome
	)
	record := func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, o)
		if opts.Done != nil {
			opts.Done(o)
		}
	}
	sas := &saCache{client: client, m: map[string]*saLookup{}}
	jobs := make(chan restoreItem)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				record(restoreSecret(ctx, client, sas, it, opts.DryRun, dry))
			}
		}()
	}
	for _, it := range r.secrets {
		jobs <- it
	}
	close(jobs)
	wg.Wait()

	// ServiceAccounts last: a reference to a Secret that is not back yet
	// would be pointless.
	restored := map[string]bool{}
	for _, it := range r.secrets {
		restored[it.secret.Namespace+"/"+it.secret.Name] = true
	}
	keys := make([]string, 0, len(r.sas))
	for k := range r.sas {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, o := range restoreRefs(ctx, client, r.sas[k], restored, opts.DryRun, dry) {
			record(o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func restoreSecret(ctx context.Context, client kubernetes.Interface, sas *saCache, it restoreItem, dryRun string, dry []string) Outcome {
	want := it.secret
	f := &Finding{Namespace: want.Namespace, Name: want.Name}
	secrets := client.CoreV1().Secrets(want.Namespace)
	cur, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if dryRun == DryRunClient {
			return outcome(f, OutWouldChange, "would re-create it")
		}
		if _, err := secrets.Create(ctx, want.DeepCopy(), metav1.CreateOptions{DryRun: dry}); err != nil {
			return outcome(f, OutFailed, "re-create: %v", describeAPIError(err, "create", "secrets", want.Namespace))
		}
		if dryRun == DryRunServer {
			return outcome(f, OutWouldChange, "would re-create it (server dry run accepted)")
		}
		return outcome(f, OutRecreated, "re-created with its original token%s", sas.warning(ctx, want))
	case err != nil:
		return outcome(f, OutFailed, "%v", describeAPIError(err, "get", "secrets", want.Namespace))
	}
	// The original object, or one an earlier restore re-created from this
	// backup (new uid, same data); anything else is someone else's.
	if string(cur.UID) != it.rec.UID && !reflect.DeepEqual(cur.Data, want.Data) {
		return outcome(f, OutSkipChanged, "a different Secret of that name exists now; left alone")
	}
	wantLabel, had := want.Labels[LabelInvalidSince]
	curLabel, has := cur.Labels[LabelInvalidSince]
	if had == has && wantLabel == curLabel {
		return outcome(f, OutUnchanged, "already as backed up")
	}
	var label any // null removes the label
	if had {
		label = wantLabel
	}
	if dryRun == DryRunClient {
		return outcome(f, OutWouldChange, "would re-enable it")
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": cur.ResourceVersion,
		"labels":          map[string]any{LabelInvalidSince: label},
	}})
	if _, err := secrets.Patch(ctx, want.Name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: dry}); err != nil {
		if apierrors.IsConflict(err) {
			return outcome(f, OutSkipChanged, "changed while restoring; run restore again")
		}
		return outcome(f, OutFailed, "re-enable: %v", describeAPIError(err, "patch", "secrets", want.Namespace))
	}
	if dryRun == DryRunServer {
		return outcome(f, OutWouldChange, "would re-enable it (server dry run accepted)")
	}
	return outcome(f, OutLabelRemoved, "invalid-since label removed%s", sas.warning(ctx, want))
}

// saCache looks each ServiceAccount up once per restore.
type saCache struct {
	client kubernetes.Interface
	mu     sync.Mutex
	m      map[string]*saLookup
}

type saLookup struct {
	once sync.Once
	sa   *corev1.ServiceAccount
	err  error
}

func (c *saCache) get(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	c.mu.Lock()
	l := c.m[ns+"/"+name]
	if l == nil {
		l = &saLookup{}
		c.m[ns+"/"+name] = l
	}
	c.mu.Unlock()
	l.once.Do(func() {
		l.sa, l.err = c.client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	})
	return l.sa, l.err
}

// warning says when the token still cannot work: its ServiceAccount is
// gone or was re-created with another uid.
func (c *saCache) warning(ctx context.Context, s *corev1.Secret) string {
	name := s.Annotations[corev1.ServiceAccountNameKey]
	sa, err := c.get(ctx, s.Namespace, name)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("; WARNING: service account %s is gone, so the token cannot authenticate (and the token controller will delete the Secret)", name)
	case err == nil && s.Annotations[corev1.ServiceAccountUIDKey] != "" && string(sa.UID) != s.Annotations[corev1.ServiceAccountUIDKey]:
		return fmt.Sprintf("; WARNING: service account %s was re-created with another uid, so the token cannot authenticate", name)
	}
	return ""
}

// restoreRefs lists again, in the SA, the restored Secrets that its backup
// listed.
func restoreRefs(ctx context.Context, client kubernetes.Interface, backup *corev1.ServiceAccount, restored map[string]bool, dryRun string, dry []string) []Outcome {
	f := &Finding{Namespace: backup.Namespace, Name: backup.Name}
	outcome := func(f *Finding, result, format string, args ...any) Outcome {
		o := outcome(f, result, format, args...)
		o.Kind = KindServiceAccount
		return o
	}
	cur, err := client.CoreV1().ServiceAccounts(backup.Namespace).Get(ctx, backup.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return []Outcome{outcome(f, OutFailed, "service account %s/%s no longer exists; its tokens cannot authenticate until it is restored with its original uid, which Kubernetes does not allow", backup.Namespace, backup.Name)}
	}
	if err != nil {
		return []Outcome{outcome(f, OutFailed, "%v", describeAPIError(err, "get", "serviceaccounts", backup.Namespace))}
	}
	has := map[string]bool{}
	for _, r := range cur.Secrets {
		has[r.Name] = true
	}
	var add []map[string]string
	for _, r := range backup.Secrets {
		if restored[backup.Namespace+"/"+r.Name] && !has[r.Name] {
			add = append(add, map[string]string{"name": r.Name})
		}
	}
	if len(add) == 0 {
		return nil
	}
	if dryRun == DryRunClient {
		return []Outcome{outcome(f, OutWouldChange, "would list %d Secret(s) again in service account %s", len(add), backup.Name)}
	}
	// Strategic merge on the list's merge key adds only what is missing.
	patch, _ := json.Marshal(map[string]any{"secrets": add})
	if _, err := client.CoreV1().ServiceAccounts(backup.Namespace).Patch(ctx, backup.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: dry}); err != nil {
		return []Outcome{outcome(f, OutFailed, "list Secrets again: %v", describeAPIError(err, "patch", "serviceaccounts", backup.Namespace))}
	}
	return []Outcome{outcome(f, OutRefRestored, "service account %s lists %d Secret(s) again", backup.Name, len(add))}
}
