package legacy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Unread lists, of the given Secrets of a namespace, those that nothing
// reads now (no pod in any phase, no workload template), as migrate's
// audit judges readers, and the readers of the others.
func Unread(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, ns string, names []string) ([]string, map[string]string, error) {
	var out []string
	read := map[string]string{}
	_, err := Scan(ctx, c, ScanOptions{Namespace: ns, Names: names, Dynamic: dyn}, func(f *Finding) error {
		// Rollout history (a Deployment's old ReplicaSet at 0) does not
		// block migrate's verdict (Finding.Blocking).
		switch {
		case len(f.Blocking()) > 0:
			var rs []string
			for _, r := range f.Blocking() {
				rs = append(rs, r.String())
			}
			read[f.Name] = strings.Join(rs, ", ")
		case f.Verdict == VerdictUnknown && strings.HasPrefix(f.Reason, "readers unknown"):
			read[f.Name] = f.Reason
		default:
			out = append(out, f.Name)
		}
		return nil
	})
	sort.Strings(out)
	return out, read, err
}

// UnreadSettle is how long UnreadAfterRollout waits for replaced pods to
// leave, and UnreadPoll how often it asks again.
const (
	UnreadSettle = 30 * time.Second
	UnreadPoll   = 2 * time.Second
)

// UnreadAfterRollout is Unread asked again, every UnreadPoll by clk, while
// some Secret is still read, for up to UnreadSettle or until ctx ends:
// replaced pods leave a moment after a rollout is complete, and until they
// are gone they still count as readers.
func UnreadAfterRollout(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, clk clock.Clock, ns string, names []string) ([]string, map[string]string, error) {
	deadline := clk.Now().Add(UnreadSettle)
	for {
		unread, read, err := Unread(ctx, c, dyn, ns, names)
		if err != nil || len(read) == 0 || clk.Now().After(deadline) || ctx.Err() != nil {
			return unread, read, err
		}
		select {
		case <-ctx.Done():
			return unread, read, err
		case <-clk.After(UnreadPoll):
		}
	}
}

// BlockingSecrets says, of Secrets of namespace ns that a pod template put
// back would read again, why each one that cannot authenticate now cannot
// (gone, or invalidated: the invalid-since label on a legacy token) and
// from which migrate backup near dir (a switch backup) to restore it.
func BlockingSecrets(ctx context.Context, c kubernetes.Interface, dir, ns string, names []string) ([]string, error) {
	var blocked []string
	for _, name := range names {
		s, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.Secret, error) {
			return c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err):
			blocked = append(blocked, fmt.Sprintf("Secret %s is gone%s", name, whereBackedUp(dir, ns, name)))
		case err != nil:
			return nil, kubeapi.DescribeAPIError(err, "get", "secrets", ns)
		case s.Type == corev1.SecretTypeServiceAccountToken && s.Labels[LabelInvalidSince] != "":
			blocked = append(blocked, fmt.Sprintf("Secret %s is invalid since %s%s", name, s.Labels[LabelInvalidSince], whereBackedUp(dir, ns, name)))
		}
	}
	return blocked, nil
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
		data, err := os.ReadFile(filepath.Join(d, backup.IndexFile))
		if err != nil {
			continue
		}
		ix, err := backup.ParseIndex(data)
		if err != nil || ix.Mode == backup.ModeSwitch {
			continue
		}
		if e := ix.Lookup(KindSecret, ns, name); e != nil && e.Backup != nil {
			fi, _ := os.Stat(filepath.Join(d, backup.IndexFile))
			hits = append(hits, found{d, fi.ModTime()})
		}
	}
	if len(hits) == 0 {
		return ": restore it first from the backup of the migrate --apply that changed it (kubectl bound-token restore --from MIGRATE-BACKUP)"
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].mod.After(hits[j].mod) })
	return fmt.Sprintf(": restore it first: kubectl bound-token restore --from %s", hits[0].dir)
}
