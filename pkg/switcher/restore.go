package switcher

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// Restore outcome results.
const (
	OutRestored = "template-restored"
	// OutSecretFirst: the template would read a Secret that is invalid
	// or gone; restore that Secret first.
	OutSecretFirst = "secret-first"
)

// RestoreOptions say what a restore of a switch backup does.
type RestoreOptions struct {
	Workers int
	Done    func(backup.Outcome)
	// Blocking says, of the Secrets a template put back would read again
	// in namespace ns, why each one that cannot authenticate now cannot
	// (gone, invalidated) and where to restore it from; the command layer
	// hands in migrate's (legacy.BlockingSecrets). An error stops the
	// restore of that workload.
	Blocking func(ctx context.Context, ns string, names []string) ([]string, error)
}

// Restorable is what a checked backup folder (backup.Inspect) holds of
// switch's: the workload backups, in the order they were taken, each read
// and checked against its sha256, with the switch record of each.
type Restorable struct {
	Folder *backup.Folder
	items  []item
}

// item is a checked workload backup and what the run recorded once the
// template was rewritten.
type item struct {
	rec *backup.Record
	// done is the switch record (nil when the run stopped before it).
	done *backup.Record
	// data is the manifest, checked against its sha256.
	data []byte
}

// OpenRestore reads every workload backup of a checked folder, before
// anything is changed.
func OpenRestore(f *backup.Folder) (*Restorable, error) {
	r := &Restorable{Folder: f}
	for _, k := range f.Index.Order {
		e := f.Index.Entries[k]
		if e.Backup == nil || backedUp(e.Backup) == nil {
			continue
		}
		data, err := f.Read(e.Backup)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %v; nothing was restored", f.Dir, err)
		}
		var done *backup.Record
		if e.Results.Has(ResultSwitched) {
			done = e.Done
		}
		r.items = append(r.items, item{rec: e.Backup, done: done, data: data})
	}
	return r, nil
}

// Namespaces lists the namespaces of the workloads the restore touches.
func (r *Restorable) Namespaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range r.items {
		if ns := it.rec.Namespace; !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	sort.Strings(out)
	return out
}

// Count is how many workloads the restore covers.
func (r *Restorable) Count() int { return len(r.items) }

// Restore puts back, byte for byte, every pod template a switch backup
// holds: only a template that is still the one the switch wrote (its
// sha256 is recorded), only while the Secrets it reads are valid, with a
// JSON patch that tests the resourceVersion read and replaces the whole
// template.
func Restore(ctx context.Context, client workload.Clients, r *Restorable, opts RestoreOptions) []backup.Outcome {
	out := make([]backup.Outcome, len(r.items))
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	kubeapi.Parallel(len(r.items), opts.Workers, func(i int) {
		out[i] = restoreOne(ctx, client, r.Folder.Dir, r.items[i], opts.Blocking)
	})
	if opts.Done != nil {
		for _, o := range out {
			opts.Done(o)
		}
	}
	backup.SortOutcomes(out)
	return out
}

func restoreOne(ctx context.Context, client workload.Clients, dir string, it item, blocking func(context.Context, string, []string) ([]string, error)) backup.Outcome {
	rec := it.rec
	res := func(result, format string, args ...any) backup.Outcome {
		return backup.Outcome{Kind: rec.Kind, Group: rec.Group, Namespace: rec.Namespace, Name: rec.Name, Result: result, Message: fmt.Sprintf(format, args...)}
	}
	bw, err := DecodeWorkload(rec, it.data)
	if err != nil {
		return res(backup.OutFailed, "%s: %v", rec.File, err)
	}
	want := bw.Template()
	cur, err := GetWorkload(ctx, client, bw.Type, rec.Namespace, rec.Name)
	if apierrors.IsNotFound(err) {
		return res(backup.OutSkipGone, "it no longer exists; its manifest is in %s", filepath.Join(dir, filepath.FromSlash(rec.File)))
	}
	if err != nil {
		return res(backup.OutFailed, "%v", kubeapi.DescribeAPIError(err, "get", bw.Type.ResourceGroup(), rec.Namespace))
	}
	if string(cur.Object.GetUID()) != rec.UID {
		return res(backup.OutSkipChanged, "a different %s of that name exists now; left alone", bw.Type.Name())
	}
	got := workload.TemplateSum(cur.Template())
	switch {
	case got == workload.TemplateSum(want):
		return res(backup.OutUnchanged, "its template is already as backed up")
	case it.done == nil:
		return res(backup.OutSkipChanged, "the switch did not record its rewrite (interrupted): run the same switch --apply with this folder to finish, then restore")
	case got != it.done.Template:
		return res(backup.OutSkipChanged, "its template changed since the switch: left alone")
	}
	blocked, err := blocking(ctx, rec.Namespace, readAgain(cur.Template(), want))
	if err != nil {
		return res(backup.OutFailed, "%v", err)
	}
	if len(blocked) > 0 {
		return res(OutSecretFirst, "not restored: its pods would fail to authenticate: %s; then run this restore again", strings.Join(blocked, "; "))
	}
	result, msg := putBack(ctx, client, it, bw, cur)
	return res(result, "%s", msg)
}

// readAgain lists the Secrets the old template reads that the current one
// does not: they must authenticate again before pods read them.
func readAgain(cur, want *corev1.PodTemplateSpec) []string {
	now := map[string]bool{}
	workload.VisitSecretNames(&cur.Spec, func(n, _ string) { now[n] = true })
	var back []string
	workload.VisitSecretNames(&want.Spec, func(n, _ string) {
		if !now[n] {
			now[n] = true
			back = append(back, n)
		}
	})
	return back
}

// putBack replaces the template with the backed-up one, as the backup
// holds it (RawTemplate: an unstructured object's fields no typed template
// knows included), by a JSON patch that tests the resourceVersion read. The resourceVersion also moves on a
// status write (a ReplicaSet's controller writes one whenever its pods
// change): a failed test is looked into, and the patch sent again while
// the template is still the one the switch wrote, as apply's patch does.
func putBack(ctx context.Context, client workload.Clients, it item, bw, cur *Workload) (result, msg string) {
	rec, want := it.rec, bw.Template()
	raw := bw.Type.RawTemplate(bw.Object)
	path := "/" + strings.Join(bw.Type.TemplatePath, "/")
	rv := cur.Object.GetResourceVersion()
	for attempt := 0; attempt < 4; attempt++ {
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
			{"op": "replace", "path": path, "value": raw},
		})
		_, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
			_, err := bw.Type.Patch(ctx, client, rec.Namespace, rec.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
			return err
		})
		if err == nil {
			return OutRestored, "template put back as backed up"
		}
		again, gerr := GetWorkload(ctx, client, bw.Type, rec.Namespace, rec.Name)
		// A lost answer to a patch that went through leaves the
		// template as backed up.
		if gerr == nil && workload.TemplateSum(again.Template()) == workload.TemplateSum(want) {
			return OutRestored, "template put back as backed up"
		}
		// A failed "test" answers 422, reason Invalid
		// (k8s.io/apiserver pkg/endpoints/handlers/patch.go, applyJSPatch:
		// NewGenericServerResponse(http.StatusUnprocessableEntity, ...)).
		if !apierrors.IsConflict(err) && !apierrors.IsInvalid(err) {
			return backup.OutFailed, kubeapi.DescribeAPIError(err, "patch", bw.Type.ResourceGroup(), rec.Namespace).Error()
		}
		if gerr != nil || workload.TemplateSum(again.Template()) != it.done.Template {
			return backup.OutSkipChanged, "its template changed while restoring: left alone; run restore again to judge it anew"
		}
		rv = again.Object.GetResourceVersion()
	}
	return backup.OutSkipChanged, "its resourceVersion kept changing while restoring; run restore again"
}
