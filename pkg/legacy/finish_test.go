package legacy

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// A Secret deleted by an earlier run into the same backup, whose service
// account still lists it, is finished by the next run: reported once as
// deleted over both runs (as CI's fault-injection test counts it), the
// second time as reference-removed.
func TestFinishGoneReportsADeletionOnce(t *testing.T) {
	for _, tc := range []struct {
		name          string
		deletedBefore bool // the earlier run recorded (and reported) the deletion
		patchFails    bool
		want          string
	}{
		{"deletion recorded: only the reference is new", true, false, OutRefRemoved},
		{"deletion not recorded: this run reports it", false, false, OutDeleted},
		{"deletion recorded, reference still left", true, true, backup.OutFailed},
		{"deletion not recorded, reference left", false, true, backup.OutDeletedRefLeft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", ResourceVersion: "3"},
				Secrets: []corev1.ObjectReference{{Name: "s"}, {Name: "other"}}}
			b, err := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeDelete, "2026-11-23")
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			r, err := b.Save(secret("ns", "s", "7"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Save(sa); err != nil {
				t.Fatal(err)
			}
			if tc.deletedBefore {
				if err := b.Commit(backup.Record{Op: backup.OpDone, Kind: KindSecret, Namespace: "ns", Name: "s", Result: ResultDeleted}); err != nil {
					t.Fatal(err)
				}
			}
			client := fake.NewSimpleClientset(sa)
			if tc.patchFails {
				client.PrependReactor("patch", "serviceaccounts", func(ktesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("connection reset by peer")
				})
			}
			a := &applier{client: client, backup: b, opts: ApplyOptions{Mode: backup.ModeDelete, DryRun: cmdutil.DryRunNone}, saOnce: map[string]*saBackup{}}
			o, ok := a.finishGone(context.Background(), *r)
			if !ok || o.Result != tc.want {
				t.Fatalf("got %v %+v, want result %s", ok, o, tc.want)
			}
			got, err := client.CoreV1().ServiceAccounts("ns").Get(context.Background(), "sa", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if listed := len(got.Secrets); tc.patchFails != (listed == 2) {
				t.Fatalf("service account lists %d Secrets", listed)
			}
		})
	}
}
