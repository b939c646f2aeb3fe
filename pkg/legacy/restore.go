package legacy

import (
	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Restore outcome results.
const (
	OutRecreated    = "recreated"
	OutLabelRemoved = "re-enabled"
	OutRefRestored  = "reference-restored"
	// OutMarksRestored: backed up invalid, and still invalid; this tool's
	// marks are as backed up again (its guard day aside).
	OutMarksRestored = "marks-restored"
)

// RestoreOptions say what restore does.
type RestoreOptions struct {
	// Only limits the restore to these NAMESPACE/NAME Secrets.
	Only    []string
	DryRun  cmdutil.DryRunStrategy
	Workers int
	Done    func(backup.Outcome)
	// Stream, when set, is handed the outcomes namespace by namespace in
	// Namespaces' order, each namespace's sorted as SortOutcomes sorts,
	// from one goroutine at a time, and Restore returns none: memory
	// holds the namespaces in flight, not the run's report.
	Stream func(backup.Outcome)
}

// Restorable is what a checked backup folder (backup.Inspect) holds of
// migrate's: the Secrets picked for the restore and their
// ServiceAccounts, each read and checked against its sha256 when it is
// opened. Only their records are kept: each manifest is read (and
// checked) again when its namespace is restored, so memory holds the
// namespaces in flight, not the backup (a restore of 20,000 Secrets held
// 476 MB when it kept every decoded Secret and every namespace's live
// objects at once; make bench-scale).
type Restorable struct {
	Folder  *backup.Folder
	secrets []restoreItem
	sas     map[string]*backup.Record // by namespace/name
}

type restoreItem struct {
	rec *backup.Record
	sa  string
}

// SelectionError says why the Secrets picked for a restore (as
// NAMESPACE/NAME) cannot be restored; the command layer names its flag.
type SelectionError struct {
	Ref    string // the NAMESPACE/NAME given, if the problem is one of them
	Reason string
}

func (e *SelectionError) Error() string {
	if e.Ref == "" {
		return e.Reason
	}
	return fmt.Sprintf("%q: %s", e.Ref, e.Reason)
}

// OpenRestore reads, before anything is changed, every Secret (and its
// ServiceAccount) that the restore of `only` (all when empty) needs from a
// checked folder, each checked against its sha256 and identity.
func OpenRestore(f *backup.Folder, only []string) (*Restorable, error) {
	ix, dir := f.Index, f.Dir
	if ix.Mode == backup.ModeSwitch && len(only) > 0 {
		return nil, &SelectionError{Reason: "names Secrets of a migrate backup; " + dir + " is a switch backup: restore it whole"}
	}
	want := map[string]bool{}
	for _, o := range only {
		ns, name, ok := strings.Cut(o, "/")
		if !ok || !backup.ValidName(ns) || !backup.ValidName(name) {
			return nil, &SelectionError{Ref: o, Reason: "want NAMESPACE/NAME"}
		}
		if e := ix.Lookup(KindSecret, ns, name); e == nil || e.Backup == nil {
			return nil, &SelectionError{Ref: o, Reason: "the backup holds no such Secret"}
		}
		want[o] = true
	}
	r := &Restorable{Folder: f, sas: map[string]*backup.Record{}}
	for _, k := range ix.Order {
		e := ix.Entries[k]
		if e.Backup == nil || e.Backup.Kind != KindSecret {
			continue
		}
		if len(want) > 0 && !want[e.Backup.Namespace+"/"+e.Backup.Name] {
			continue
		}
		data, err := f.Read(e.Backup)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %v; nothing was restored", dir, err)
		}
		s, err := decodeSecret(data)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %s: %v; nothing was restored", dir, e.Backup.File, err)
		}
		sa := s.Annotations[corev1.ServiceAccountNameKey]
		r.secrets = append(r.secrets, restoreItem{rec: e.Backup, sa: sa})
		if _, err := r.addServiceAccount(s.Namespace, sa); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// addServiceAccount checks the backup of a ServiceAccount, once, and keeps
// its record.
func (r *Restorable) addServiceAccount(ns, name string) (*corev1.ServiceAccount, error) {
	saKey := ns + "/" + name
	if _, done := r.sas[saKey]; done {
		return nil, nil
	}
	se := r.Folder.Index.Lookup(KindServiceAccount, ns, name)
	if se == nil || se.Backup == nil {
		return nil, nil
	}
	sa, err := r.readServiceAccount(se.Backup)
	if err != nil {
		return nil, err
	}
	r.sas[saKey] = se.Backup
	return sa, nil
}

// readSecret reads (and checks again) a Secret's backup.
func (r *Restorable) readSecret(rec *backup.Record) (*corev1.Secret, error) {
	data, err := r.Folder.Read(rec)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %v", r.Folder.Dir, err)
	}
	s, err := decodeSecret(data)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %s: %v", r.Folder.Dir, rec.File, err)
	}
	return s, nil
}

// readServiceAccount reads (and checks) a ServiceAccount's backup.
func (r *Restorable) readServiceAccount(rec *backup.Record) (*corev1.ServiceAccount, error) {
	data, err := r.Folder.Read(rec)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %v; nothing was restored", r.Folder.Dir, err)
	}
	var sa corev1.ServiceAccount
	if err := backup.StrictJSON(data, &sa); err != nil {
		return nil, fmt.Errorf("backup %s: %s: %v; nothing was restored", r.Folder.Dir, rec.File, text.OneLine(err.Error(), 0))
	}
	return &sa, nil
}

// Namespaces lists the namespaces of the Secrets the restore touches.
func (r *Restorable) Namespaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range r.secrets {
		if ns := it.rec.Namespace; !seen[ns] {
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
	if err := backup.StrictJSON(data, &s); err != nil {
		return nil, fmt.Errorf("not a Secret manifest: %v", text.OneLine(err.Error(), 0))
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
//
// The live state is read with one LIST of Secrets and one of
// ServiceAccounts per namespace, not a GET per object; every write then
// carries the listed resourceVersion, so a change in between is noticed.
func Restore(ctx context.Context, client kubernetes.Interface, r *Restorable, opts RestoreOptions) []backup.Outcome {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	rs := &restorer{client: client, dryRun: opts.DryRun}
	rs.dry = kubeapi.DryRunAll(opts.DryRun)
	var (
		mu   sync.Mutex
		out  []backup.Outcome
		next int // Namespaces' index of the next namespace to hand on
	)
	finished := map[int][]backup.Outcome{}
	// nsDone takes a namespace's outcomes and hands on, in order, those
	// of every namespace before which all are done.
	nsDone := func(n int, nsOut []backup.Outcome) {
		backup.SortOutcomes(nsOut)
		mu.Lock()
		defer mu.Unlock()
		finished[n] = nsOut
		for o, ok := finished[next]; ok; o, ok = finished[next] {
			delete(finished, next)
			next++
			if opts.Stream == nil {
				out = append(out, o...)
				continue
			}
			for _, oc := range o {
				opts.Stream(oc)
			}
		}
	}
	var doneMu sync.Mutex
	done := func(o backup.Outcome) {
		if opts.Done != nil {
			doneMu.Lock()
			defer doneMu.Unlock()
			opts.Done(o)
		}
	}

	// Namespace by namespace, a few at once: its live objects are read,
	// its Secrets restored, then its ServiceAccounts (last: a reference
	// to a Secret that is not back yet would be pointless). Only the
	// namespaces in flight are in memory.
	byNS := map[string][]restoreItem{}
	for _, it := range r.secrets {
		byNS[it.rec.Namespace] = append(byNS[it.rec.Namespace], it)
	}
	saKeys := map[string][]string{}
	for k := range r.sas {
		ns, _, _ := strings.Cut(k, "/")
		saKeys[ns] = append(saKeys[ns], k)
	}
	nss := r.Namespaces()
	kubeapi.Parallel(len(nss), opts.Workers, func(n int) {
		ns := nss[n]
		var nsMu sync.Mutex
		var nsOut []backup.Outcome
		record := func(o backup.Outcome) {
			done(o)
			nsMu.Lock()
			defer nsMu.Unlock()
			nsOut = append(nsOut, o)
		}
		live := readLive(ctx, client, ns)
		items := byNS[ns]
		restored := map[string]bool{}
		kubeapi.Parallel(len(items), opts.Workers, func(i int) {
			it := items[i]
			want, err := r.readSecret(it.rec)
			if err != nil {
				record(backup.Outcome{Namespace: it.rec.Namespace, Name: it.rec.Name, Result: backup.OutFailed, Message: err.Error()})
				return
			}
			record(rs.secret(ctx, live, it, want))
		})
		for _, it := range items {
			restored[ns+"/"+it.rec.Name] = true
		}
		keys := saKeys[ns]
		sort.Strings(keys)
		for _, k := range keys {
			sa, err := r.readServiceAccount(r.sas[k])
			if err != nil {
				_, name, _ := strings.Cut(k, "/")
				record(backup.Outcome{Kind: KindServiceAccount, Namespace: ns, Name: name, Result: backup.OutFailed, Message: err.Error()})
				continue
			}
			if o, ok := rs.refs(ctx, live, sa, restored); ok {
				record(o)
			}
		}
		nsDone(n, nsOut)
	})
	backup.SortOutcomes(out)
	return out
}

// liveState is what a namespace holds now: its legacy token Secrets,
// listed first, and its ServiceAccounts, listed only when a restore needs
// them (a Secret re-created, a reference put back): restoring the
// invalidations of thousands of namespaces then costs one LIST each, not
// two.
type liveState struct {
	secrets map[string]*corev1.Secret
	err     error

	client kubernetes.Interface
	ns     string
	once   sync.Once
	sas    map[string]*corev1.ServiceAccount
	saErr  error
}

func readLive(ctx context.Context, client kubernetes.Interface, ns string) *liveState {
	l := &liveState{secrets: map[string]*corev1.Secret{}, client: client, ns: ns}
	lo := metav1.ListOptions{Limit: 500, FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	err := kubeapi.EachPage(ctx, lo, client.CoreV1().Secrets(ns).List, func(sl *corev1.SecretList) error {
		for i := range sl.Items {
			l.secrets[sl.Items[i].Name] = &sl.Items[i]
		}
		return nil
	})
	if err != nil {
		l.err = kubeapi.DescribeAPIError(err, "list", "secrets", ns)
	}
	return l
}

// serviceAccounts lists the namespace's ServiceAccounts, once.
func (l *liveState) serviceAccounts(ctx context.Context) (map[string]*corev1.ServiceAccount, error) {
	l.once.Do(func() {
		l.sas = map[string]*corev1.ServiceAccount{}
		err := kubeapi.EachPage(ctx, metav1.ListOptions{Limit: 500}, l.client.CoreV1().ServiceAccounts(l.ns).List, func(al *corev1.ServiceAccountList) error {
			for i := range al.Items {
				l.sas[al.Items[i].Name] = &al.Items[i]
			}
			return nil
		})
		if err != nil {
			l.saErr = kubeapi.DescribeAPIError(err, "list", "serviceaccounts", l.ns)
		}
	})
	return l.sas, l.saErr
}

type restorer struct {
	client kubernetes.Interface
	dryRun cmdutil.DryRunStrategy
	dry    []string
}

func (rs *restorer) secret(ctx context.Context, live *liveState, it restoreItem, want *corev1.Secret) backup.Outcome {
	f := &Finding{Namespace: want.Namespace, Name: want.Name}
	if live.err != nil {
		return outcome(f, backup.OutFailed, "%v", live.err)
	}
	cur, exists := live.secrets[want.Name]
	if !exists {
		return rs.recreate(ctx, live, f, want)
	}
	// The original object, or one an earlier restore re-created from this
	// backup (new uid, same data); anything else is someone else's.
	if string(cur.UID) != it.rec.UID && !reflect.DeepEqual(cur.Data, want.Data) {
		return outcome(f, backup.OutSkipChanged, "a different Secret of that name exists now; left alone")
	}
	return rs.reenable(ctx, live, f, want, cur)
}

// recreate creates a deleted Secret again from its backup.
func (rs *restorer) recreate(ctx context.Context, live *liveState, f *Finding, want *corev1.Secret) backup.Outcome {
	if rs.dryRun == cmdutil.DryRunClient {
		return outcome(f, backup.OutWouldChange, "would re-create it")
	}
	// A fixed name: a repeat of a create that went through answers
	// AlreadyExists, and the data then tells whether it was ours.
	// A restore never adds a guard back (restoreMarks): a Secret
	// backed up while guarded comes back unguarded.
	create := want.DeepCopy()
	delete(create.Labels, LabelGuardUntil)
	tries, err := callRetried(ctx, func(ctx context.Context) error {
		_, err := rs.client.CoreV1().Secrets(want.Namespace).Create(ctx, create.DeepCopy(), metav1.CreateOptions{DryRun: rs.dry})
		return err
	})
	if err != nil {
		var lookErr error
		if tries > 1 && (apierrors.IsAlreadyExists(err) || retry.MayHaveApplied(tries, err)) {
			var same bool
			if same, lookErr = rs.sameData(ctx, want); same {
				return outcome(f, OutRecreated, "re-created with its original token%s", saWarning(ctx, live, want))
			}
		}
		if apierrors.IsAlreadyExists(err) {
			return outcome(f, backup.OutSkipChanged, "created by someone else while restoring; run restore again")
		}
		return outcome(f, backup.OutFailed, "re-create: %v%s", kubeapi.DescribeAPIError(err, "create", "secrets", want.Namespace), unsure(lookErr))
	}
	if rs.dryRun == cmdutil.DryRunServer {
		return outcome(f, backup.OutWouldChange, "would re-create it (server dry run accepted)")
	}
	return outcome(f, OutRecreated, "re-created with its original token%s", saWarning(ctx, live, want))
}

// reenable puts back the labels and annotations a Secret had when it was
// backed up: the invalid-since label goes, and the marks of this tool
// come back as they were (restoreMarks).
func (rs *restorer) reenable(ctx context.Context, live *liveState, f *Finding, want, cur *corev1.Secret) backup.Outcome {
	labels, ann := restoreMarks(want, cur)
	if len(labels) == 0 && len(ann) == 0 {
		return outcome(f, backup.OutUnchanged, "already as backed up")
	}
	if rs.dryRun == cmdutil.DryRunClient {
		return outcome(f, backup.OutWouldChange, "would re-enable it")
	}
	meta := map[string]any{"resourceVersion": cur.ResourceVersion}
	if len(labels) > 0 {
		meta["labels"] = labels
	}
	if len(ann) > 0 {
		meta["annotations"] = ann
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	tries, err := callRetried(ctx, func(ctx context.Context) error {
		_, err := rs.client.CoreV1().Secrets(want.Namespace).Patch(ctx, want.Name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: rs.dry})
		return err
	})
	if err != nil {
		var lookErr error
		if tries > 1 && (apierrors.IsConflict(err) || retry.MayHaveApplied(tries, err)) {
			var ok bool
			if ok, lookErr = rs.labelAsBackedUp(ctx, want, string(cur.UID)); ok {
				labels = nil
				err = nil
			}
		}
		if err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return outcome(f, backup.OutSkipChanged, "changed while restoring; run restore again")
			}
			return outcome(f, backup.OutFailed, "re-enable: %v%s", kubeapi.DescribeAPIError(err, "patch", "secrets", want.Namespace), unsure(lookErr))
		}
	} else if rs.dryRun == cmdutil.DryRunServer {
		return outcome(f, backup.OutWouldChange, "would re-enable it (server dry run accepted)")
	}
	if _, invalid := want.Labels[LabelInvalidSince]; invalid {
		return outcome(f, OutMarksRestored, "%s", restoredMessage(want, labels))
	}
	return outcome(f, OutLabelRemoved, "%s%s", restoredMessage(want, labels), saWarning(ctx, live, want))
}

// sameData reports whether the live Secret holds the backed-up data, and
// the error of reading it.
func (rs *restorer) sameData(ctx context.Context, want *corev1.Secret) (bool, error) {
	cur, err := getSecret(ctx, rs.client, want.Namespace, want.Name)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(cur.Data, want.Data), nil
}

// labelAsBackedUp reports whether the live Secret (still uid) carries the
// backed-up invalid-since state, the trace of our own retried patch, and
// the error of reading it.
func (rs *restorer) labelAsBackedUp(ctx context.Context, want *corev1.Secret, uid string) (bool, error) {
	cur, err := getSecret(ctx, rs.client, want.Namespace, want.Name)
	if err != nil || string(cur.UID) != uid {
		return false, err
	}
	labels, ann := restoreMarks(want, cur)
	return len(labels) == 0 && len(ann) == 0, nil
}

// restoreMarks is what a restore changes on cur to bring back its backup
// want, as merge-patch labels and annotations (nil removes one): the
// invalid-since label and this tool's marks as backed up, except the guard
// day, which is always removed (a restore never adds a guard back: a
// revocation stays unguarded), and a last-used label the invalidation
// cleared, put back while kube-apiserver has not written one since. What
// the platform changed since (a newer last-used day) is left as it is.
func restoreMarks(want, cur *corev1.Secret) (labels, ann map[string]any) {
	labels, ann = map[string]any{}, map[string]any{}
	set := func(into map[string]any, key string, wantM, curM map[string]string) {
		w, had := wantM[key]
		c, has := curM[key]
		switch {
		case had && (!has || w != c):
			into[key] = w
		case !had && has:
			into[key] = nil // null removes it
		}
	}
	set(labels, LabelInvalidSince, want.Labels, cur.Labels)
	if _, has := cur.Labels[LabelGuardUntil]; has {
		labels[LabelGuardUntil] = nil
	}
	if w, had := want.Labels[LabelLastUsed]; had {
		if _, has := cur.Labels[LabelLastUsed]; !has {
			labels[LabelLastUsed] = w
		}
	}
	for _, k := range markAnnotations {
		set(ann, k, want.Annotations, cur.Annotations)
	}
	return labels, ann
}

// restoredMessage says what a restore's patch (its labels) did; nil
// labels when that is not known (a retried patch found done).
func restoredMessage(want *corev1.Secret, labels map[string]any) string {
	_, wasInvalid := want.Labels[LabelInvalidSince]
	_, relabelled := labels[LabelInvalidSince]
	switch {
	case wasInvalid:
		return "marks put back as backed up (invalid, as it was then)"
	case labels != nil && !relabelled:
		return "this tool's marks removed (it was valid already)"
	}
	return "invalid-since label and this tool's marks removed"
}

// saWarning says when the token still cannot work: its ServiceAccount is
// gone or was re-created with another uid.
func saWarning(ctx context.Context, live *liveState, s *corev1.Secret) string {
	name := s.Annotations[corev1.ServiceAccountNameKey]
	sas, err := live.serviceAccounts(ctx)
	if err != nil {
		return fmt.Sprintf("; its service account %s could not be checked: %v", name, err)
	}
	sa, ok := sas[name]
	switch {
	case !ok:
		return fmt.Sprintf("; WARNING: service account %s is gone, so the token cannot authenticate (and the token controller will delete the Secret)", name)
	case s.Annotations[corev1.ServiceAccountUIDKey] != "" && string(sa.UID) != s.Annotations[corev1.ServiceAccountUIDKey]:
		return fmt.Sprintf("; WARNING: service account %s was re-created with another uid, so the token cannot authenticate", name)
	}
	return ""
}

// refs lists again, in the SA, the restored Secrets that its backup listed.
// It reports false when there was nothing to do.
func (rs *restorer) refs(ctx context.Context, live *liveState, saved *corev1.ServiceAccount, restored map[string]bool) (backup.Outcome, bool) {
	f := &Finding{Namespace: saved.Namespace, Name: saved.Name}
	outcome := func(result, format string, args ...any) (backup.Outcome, bool) {
		o := outcome(f, result, format, args...)
		o.Kind = KindServiceAccount
		return o, true
	}
	if live.err != nil {
		return outcome(backup.OutFailed, "%v", live.err)
	}
	sas, err := live.serviceAccounts(ctx)
	if err != nil {
		return outcome(backup.OutFailed, "%v", err)
	}
	cur, ok := sas[saved.Name]
	if !ok {
		return outcome(backup.OutFailed, "service account %s/%s no longer exists; its tokens cannot authenticate until it is restored with its original uid, which Kubernetes does not allow", saved.Namespace, saved.Name)
	}
	has := map[string]bool{}
	for _, r := range cur.Secrets {
		has[r.Name] = true
	}
	var add []map[string]string
	for _, r := range saved.Secrets {
		if restored[saved.Namespace+"/"+r.Name] && !has[r.Name] {
			add = append(add, map[string]string{"name": r.Name})
		}
	}
	if len(add) == 0 {
		return backup.Outcome{}, false
	}
	if rs.dryRun == cmdutil.DryRunClient {
		return outcome(backup.OutWouldChange, "would list %d Secret(s) again in service account %s", len(add), saved.Name)
	}
	// Strategic merge on the list's merge key adds only what is missing,
	// so no resourceVersion is needed: nothing is overwritten.
	patch, _ := json.Marshal(map[string]any{"secrets": add})
	err = call(ctx, func(ctx context.Context) error {
		_, err := rs.client.CoreV1().ServiceAccounts(saved.Namespace).Patch(ctx, saved.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{DryRun: rs.dry})
		return err
	})
	if err != nil {
		return outcome(backup.OutFailed, "list Secrets again: %v", kubeapi.DescribeAPIError(err, "patch", "serviceaccounts", saved.Namespace))
	}
	if rs.dryRun == cmdutil.DryRunServer {
		return outcome(backup.OutWouldChange, "would list %d Secret(s) again (server dry run accepted)", len(add))
	}
	return outcome(OutRefRestored, "service account %s lists %d Secret(s) again", saved.Name, len(add))
}
