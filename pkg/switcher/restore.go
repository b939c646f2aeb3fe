package switcher

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
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
	Done    func(legacy.Outcome)
}

// Restore puts back, byte for byte, every pod template a switch backup
// holds: only a template that is still the one the switch wrote (its
// sha256 is recorded), only while the Secrets it reads are valid, with a
// JSON patch that tests the resourceVersion read and replaces the whole
// template.
func Restore(ctx context.Context, client kubernetes.Interface, r *legacy.Restorable, opts RestoreOptions) []legacy.Outcome {
	items := r.Workloads()
	out := make([]legacy.Outcome, len(items))
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	kubeapi.Parallel(len(items), opts.Workers, func(i int) {
		out[i] = restoreOne(ctx, client, r.Dir, items[i])
	})
	if opts.Done != nil {
		for _, o := range out {
			opts.Done(o)
		}
	}
	sortOutcomes(out)
	return out
}

func restoreOne(ctx context.Context, client kubernetes.Interface, dir string, it legacy.WorkloadItem) legacy.Outcome {
	rec := it.Rec
	res := func(result, format string, args ...any) legacy.Outcome {
		return legacy.Outcome{Kind: rec.Kind, Namespace: rec.Namespace, Name: rec.Name, Result: result, Message: fmt.Sprintf(format, args...)}
	}
	bw, err := DecodeWorkload(rec.Kind, it.Data)
	if err != nil {
		return res(legacy.OutFailed, "%s: %v", rec.File, err)
	}
	want := bw.Template()
	cur, err := GetWorkload(ctx, client, rec.Kind, rec.Namespace, rec.Name)
	if apierrors.IsNotFound(err) {
		return res(legacy.OutSkipGone, "it no longer exists; its manifest is in %s", filepath.Join(dir, filepath.FromSlash(rec.File)))
	}
	if err != nil {
		return res(legacy.OutFailed, "%v", kubeapi.DescribeAPIError(err, "get", resourceOf(rec.Kind), rec.Namespace))
	}
	if string(cur.Object.GetUID()) != rec.UID {
		return res(legacy.OutSkipChanged, "a different %s of that name exists now; left alone", rec.Kind)
	}
	got := TemplateSum(cur.Template())
	switch {
	case got == TemplateSum(want):
		return res(legacy.OutUnchanged, "its template is already as backed up")
	case it.Done == nil:
		return res(legacy.OutSkipChanged, "the switch did not record its rewrite (interrupted): run the same switch --apply with this folder to finish, then restore")
	case got != it.Done.Template:
		return res(legacy.OutSkipChanged, "its template changed since the switch: left alone")
	}
	// The Secrets the old template reads that the current one does not:
	// they must authenticate again before pods read them.
	now := map[string]bool{}
	legacy.VisitSecretNames(&cur.Template().Spec, func(n, _ string) { now[n] = true })
	var back []string
	legacy.VisitSecretNames(&want.Spec, func(n, _ string) {
		if !now[n] {
			now[n] = true
			back = append(back, n)
		}
	})
	var blocked []string
	for _, name := range back {
		s, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.Secret, error) {
			return client.CoreV1().Secrets(rec.Namespace).Get(ctx, name, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err):
			blocked = append(blocked, fmt.Sprintf("Secret %s is gone%s", name, whereBackedUp(dir, rec.Namespace, name)))
		case err != nil:
			return res(legacy.OutFailed, "%v", kubeapi.DescribeAPIError(err, "get", "secrets", rec.Namespace))
		case s.Type == corev1.SecretTypeServiceAccountToken && s.Labels[legacy.LabelInvalidSince] != "":
			blocked = append(blocked, fmt.Sprintf("Secret %s is invalid since %s%s", name, s.Labels[legacy.LabelInvalidSince], whereBackedUp(dir, rec.Namespace, name)))
		}
	}
	if len(blocked) > 0 {
		return res(OutSecretFirst, "not restored: its pods would fail to authenticate: %s; then run this restore again", strings.Join(blocked, "; "))
	}
	path := "/" + strings.Join(bw.templatePath(), "/")
	// The resourceVersion also moves on a status write (a ReplicaSet's
	// controller writes one whenever its pods change): a failed test is
	// looked into, and the patch sent again while the template is still
	// the one the switch wrote, as apply's patch does.
	rv := cur.Object.GetResourceVersion()
	for attempt := 0; attempt < 4; attempt++ {
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
			{"op": "replace", "path": path, "value": want},
		})
		_, err = retry.Do(ctx, retry.Default, func(ctx context.Context) error {
			_, err := patchWorkload(ctx, client, rec.Kind, rec.Namespace, rec.Name, types.JSONPatchType, patch, nil)
			return err
		})
		if err == nil {
			return res(OutRestored, "template put back as backed up")
		}
		again, gerr := GetWorkload(ctx, client, rec.Kind, rec.Namespace, rec.Name)
		// A lost answer to a patch that went through leaves the
		// template as backed up.
		if gerr == nil && TemplateSum(again.Template()) == TemplateSum(want) {
			return res(OutRestored, "template put back as backed up")
		}
		// A failed "test" answers 422, reason Invalid
		// (k8s.io/apiserver pkg/endpoints/handlers/patch.go, applyJSPatch:
		// NewGenericServerResponse(http.StatusUnprocessableEntity, ...)).
		if !apierrors.IsConflict(err) && !apierrors.IsInvalid(err) {
			return res(legacy.OutFailed, "%v", kubeapi.DescribeAPIError(err, "patch", resourceOf(rec.Kind), rec.Namespace))
		}
		if gerr != nil || TemplateSum(again.Template()) != it.Done.Template {
			return res(legacy.OutSkipChanged, "its template changed while restoring: left alone; run restore again to judge it anew")
		}
		rv = again.Object.GetResourceVersion()
	}
	return res(legacy.OutSkipChanged, "its resourceVersion kept changing while restoring; run restore again")
}

// whereBackedUp names the migrate backup folder, next to dir or in the
// working folder, that holds the Secret: the folder to restore first.
func whereBackedUp(dir, ns, name string) string {
	abs, _ := filepath.Abs(dir)
	cands := map[string]bool{}
	for _, parent := range []string{filepath.Dir(abs), "."} {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.IsDir() {
				p, _ := filepath.Abs(filepath.Join(parent, e.Name()))
				if p != abs {
					cands[p] = true
				}
			}
		}
	}
	type found struct {
		dir string
		mod time.Time
	}
	var hits []found
	for d := range cands {
		data, err := os.ReadFile(filepath.Join(d, legacy.IndexFile))
		if err != nil {
			continue
		}
		ix, err := legacy.ParseIndex(data)
		if err != nil || ix.Mode == legacy.ModeSwitch {
			continue
		}
		if e := ix.Lookup(legacy.KindSecret, ns, name); e != nil && e.Backup != nil {
			fi, _ := os.Stat(filepath.Join(d, legacy.IndexFile))
			hits = append(hits, found{d, fi.ModTime()})
		}
	}
	if len(hits) == 0 {
		return ": restore it first from the backup of the migrate --apply that changed it (kubectl bound-token restore --from MIGRATE-BACKUP)"
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].mod.After(hits[j].mod) })
	return fmt.Sprintf(": restore it first: kubectl bound-token restore --from %s", hits[0].dir)
}

// patchWorkload patches a workload of one of the kinds switch changes.
func patchWorkload(ctx context.Context, c kubernetes.Interface, kind, ns, name string, pt types.PatchType, patch []byte, dryRun []string) (runtime.Object, error) {
	po := metav1.PatchOptions{DryRun: dryRun}
	switch kind {
	case legacy.KindDeployment:
		return c.AppsV1().Deployments(ns).Patch(ctx, name, pt, patch, po)
	case legacy.KindStatefulSet:
		return c.AppsV1().StatefulSets(ns).Patch(ctx, name, pt, patch, po)
	case legacy.KindDaemonSet:
		return c.AppsV1().DaemonSets(ns).Patch(ctx, name, pt, patch, po)
	case legacy.KindReplicaSet:
		return c.AppsV1().ReplicaSets(ns).Patch(ctx, name, pt, patch, po)
	case legacy.KindReplicationController:
		return c.CoreV1().ReplicationControllers(ns).Patch(ctx, name, pt, patch, po)
	case legacy.KindCronJob:
		return c.BatchV1().CronJobs(ns).Patch(ctx, name, pt, patch, po)
	}
	return nil, fmt.Errorf("cannot patch a %s", kind)
}

// Unread lists, of the given Secrets of a namespace, those that nothing
// reads now (no pod in any phase, no workload template), as migrate's
// audit judges readers, and the readers of the others.
func Unread(ctx context.Context, c kubernetes.Interface, ns string, names []string) ([]string, map[string]string, error) {
	var out []string
	read := map[string]string{}
	_, err := legacy.Scan(ctx, c, legacy.ScanOptions{Namespace: ns, Names: names}, func(f *legacy.Finding) error {
		// Rollout history (a Deployment's old ReplicaSet at 0) does not
		// block migrate's verdict (legacy.Finding.Blocking).
		switch {
		case len(f.Blocking()) > 0:
			var rs []string
			for _, r := range f.Blocking() {
				rs = append(rs, r.String())
			}
			read[f.Name] = strings.Join(rs, ", ")
		case f.Verdict == legacy.VerdictUnknown && strings.HasPrefix(f.Reason, "readers unknown"):
			read[f.Name] = f.Reason
		default:
			out = append(out, f.Name)
		}
		return nil
	})
	sort.Strings(out)
	return out, read, err
}
