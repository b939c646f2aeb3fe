package legacy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// backedUpSecrets writes an invalidate backup of the given Secrets (as
// they were before the change) and opens it for a restore.
func backedUpSecrets(t *testing.T, secrets ...*corev1.Secret) *Restorable {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeInvalidate, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if _, err := b.Save(s); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	r, err := inspectRestore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func results(out []backup.Outcome) map[string]string {
	m := map[string]string{}
	for _, o := range out {
		m[o.Name] = o.Result
	}
	return m
}

func invalidatedCopy(s *corev1.Secret) *corev1.Secret {
	c := s.DeepCopy()
	c.Labels = map[string]string{LabelInvalidSince: dayOf(now)}
	return c
}

// TestRestoreSecretCases: each case of restoring one Secret, on the live
// state a LIST returns.
func TestRestoreSecretCases(t *testing.T) {
	ctx := context.Background()
	gone, invalid, same, other := secret("ns", "gone", "1"), secret("ns", "invalid", "2"), secret("ns", "same", "3"), secret("ns", "other", "4")
	gone.Labels = map[string]string{LabelGuardUntil: "2027-01-01"} // backed up while guarded
	r := backedUpSecrets(t, gone, invalid, same, other)

	replaced := secret("ns", "other", "9")
	replaced.UID, replaced.Data = "someone-elses", map[string][]byte{"token": []byte("new")}
	cs := fake.NewClientset(invalidatedCopy(invalid), same.DeepCopy(), replaced)
	out := Restore(ctx, cs, r, RestoreOptions{})
	want := map[string]string{"gone": OutRecreated, "invalid": OutLabelRemoved, "same": backup.OutUnchanged, "other": backup.OutSkipChanged}
	if got := results(out); !reflect.DeepEqual(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	// Recreated with its original data, without the guard it had.
	back, err := cs.CoreV1().Secrets("ns").Get(ctx, "gone", metav1.GetOptions{})
	if err != nil || string(back.Data["token"]) != "secret-token-value" {
		t.Fatalf("recreated %v, %v", back, err)
	}
	if _, ok := back.Labels[LabelGuardUntil]; ok {
		t.Error("restore put a guard back")
	}
	if cur, _ := cs.CoreV1().Secrets("ns").Get(ctx, "invalid", metav1.GetOptions{}); cur.Labels[LabelInvalidSince] != "" {
		t.Errorf("still invalid: %v", cur.Labels)
	}
	if cur, _ := cs.CoreV1().Secrets("ns").Get(ctx, "other", metav1.GetOptions{}); string(cur.Data["token"]) != "new" {
		t.Error("someone else's Secret was changed")
	}
	// Outcomes come sorted, as kubectl lists.
	for i := 1; i < len(out); i++ {
		if out[i-1].Name > out[i].Name {
			t.Errorf("outcomes not sorted: %v", out)
		}
	}

	// Idempotent: run again, nothing left to do.
	if got := results(Restore(ctx, cs, r, RestoreOptions{})); got["gone"] != backup.OutUnchanged || got["invalid"] != backup.OutUnchanged || got["other"] != backup.OutSkipChanged {
		t.Errorf("second restore %v", got)
	}
}

// TestRestoreRecreatedWithNewUIDIsOurs: a Secret an earlier restore
// re-created (new uid, same data) is the backed-up one, not someone else's.
func TestRestoreRecreatedWithNewUIDIsOurs(t *testing.T) {
	s := secret("ns", "s", "1")
	r := backedUpSecrets(t, s)
	re := invalidatedCopy(s)
	re.UID = "new-uid"
	cs := fake.NewClientset(re)
	if got := results(Restore(context.Background(), cs, r, RestoreOptions{})); got["s"] != OutLabelRemoved {
		t.Errorf("outcome %v", got)
	}
}

func TestRestoreDryRuns(t *testing.T) {
	ctx := context.Background()
	gone, invalid := secret("ns", "gone", "1"), secret("ns", "invalid", "2")
	r := backedUpSecrets(t, gone, invalid)
	for _, dry := range []cmdutil.DryRunStrategy{cmdutil.DryRunClient, cmdutil.DryRunServer} {
		cs := fake.NewClientset(invalidatedCopy(invalid))
		var writes []string
		cs.PrependReactor("*", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
			switch a.GetVerb() {
			case "create", "patch", "update", "delete":
				writes = append(writes, a.GetVerb())
				if dry == cmdutil.DryRunServer {
					// The server answers and keeps nothing.
					return true, nil, nil
				}
			}
			return false, nil, nil
		})
		got := results(Restore(ctx, cs, r, RestoreOptions{DryRun: dry}))
		if got["gone"] != backup.OutWouldChange || got["invalid"] != backup.OutWouldChange {
			t.Errorf("dry run %v: %v", dry, got)
		}
		if dry == cmdutil.DryRunClient && len(writes) != 0 {
			t.Errorf("client dry run wrote: %v", writes)
		}
		if dry == cmdutil.DryRunServer && len(writes) != 2 {
			t.Errorf("server dry run sent %v, want a create and a patch", writes)
		}
	}
}

// TestRestoreRaces: someone else's write between the LIST and ours leaves
// the Secret alone (skipped-changed); a write of ours that went through
// though its answer was lost is recognised.
func TestRestoreRaces(t *testing.T) {
	ctx := context.Background()
	gone, invalid := secret("ns", "gone", "1"), secret("ns", "invalid", "2")
	r := backedUpSecrets(t, gone, invalid)

	// Someone else creates and patches in between.
	cs := fake.NewClientset(invalidatedCopy(invalid))
	cs.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "gone")
	})
	cs.PrependReactor("patch", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "invalid", nil)
	})
	out := Restore(ctx, cs, r, RestoreOptions{})
	for _, o := range out {
		if o.Result != backup.OutSkipChanged || !o.Failed() {
			t.Errorf("race: %+v", o)
		}
	}

	// Ours went through, the answer was lost (a timeout), and the retry
	// finds it done.
	cs = fake.NewClientset(invalidatedCopy(invalid))
	first := map[string]bool{}
	cs.PrependReactor("*", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		v := a.GetVerb()
		if v == "patch" && first[v] {
			// The apiserver refuses the retry: the resourceVersion it
			// carries is the one our lost write replaced.
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "invalid", nil)
		}
		if (v == "create" || v == "patch") && !first[v] {
			first[v] = true
			// Apply it, then lose the answer.
			if _, _, err := k8stesting.ObjectReaction(cs.Tracker())(a); err != nil {
				t.Fatal(err)
			}
			return true, nil, apierrors.NewTimeoutError("lost", 1)
		}
		return false, nil, nil
	})
	got := results(Restore(ctx, cs, r, RestoreOptions{}))
	if got["gone"] != OutRecreated || got["invalid"] != OutLabelRemoved {
		t.Errorf("lost answers: %v", got)
	}
}

// TestRestoreFailsWhenTheNamespaceCannotBeListed: nothing is changed
// blind; every Secret of the namespace fails.
func TestRestoreFailsWhenTheNamespaceCannotBeListed(t *testing.T) {
	r := backedUpSecrets(t, secret("ns", "a", "1"), secret("ns", "b", "1"))
	cs := fake.NewClientset()
	cs.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", nil)
	})
	out := Restore(context.Background(), cs, r, RestoreOptions{})
	if len(out) != 2 {
		t.Fatalf("outcomes %+v", out)
	}
	for _, o := range out {
		if o.Result != backup.OutFailed || !strings.Contains(o.Message, "secrets") {
			t.Errorf("%+v", o)
		}
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "list" {
			t.Errorf("%s sent without the live state", a.GetVerb())
		}
	}
}

// The restore keeps the backup's records, not its Secrets: each manifest
// is read and checked again when its namespace is restored, so a file
// changed after the folder was opened fails that Secret alone.
func TestRestoreReadsEachBackupWhenItRestoresIt(t *testing.T) {
	ctx := context.Background()
	a, b := secret("ns1", "a", "1"), secret("ns2", "b", "2")
	r := backedUpSecrets(t, a, b)
	for _, it := range r.secrets {
		if it.rec.Name == "a" {
			if err := os.WriteFile(filepath.Join(r.Folder.Dir, filepath.FromSlash(it.rec.File)), []byte("{}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := Restore(ctx, fake.NewClientset(), r, RestoreOptions{Workers: 2})
	got := results(out)
	if got["a"] != backup.OutFailed || got["b"] != OutRecreated {
		t.Fatalf("outcomes %v", got)
	}
}

// A namespace whose Secrets are already as backed up costs one LIST, of
// its Secrets; its ServiceAccounts are listed, once, only when a Secret
// is re-created or re-enabled (its account is checked: a token of a
// re-created account cannot authenticate) or a reference put back.
func TestRestoreListsServiceAccountsOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()
	same1, same2, gone, inv := secret("ns1", "a", "1"), secret("ns1", "b", "2"), secret("ns2", "c", "3"), secret("ns2", "d", "4")
	r := backedUpSecrets(t, same1, same2, gone, inv)
	cs := fake.NewClientset(same1.DeepCopy(), same2.DeepCopy(), invalidatedCopy(inv))
	Restore(ctx, cs, r, RestoreOptions{Workers: 2})
	lists := map[string]int{}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "list" {
			lists[a.GetNamespace()+"/"+a.GetResource().Resource]++
		}
	}
	want := map[string]int{"ns1/secrets": 1, "ns2/secrets": 1, "ns2/serviceaccounts": 1}
	if !reflect.DeepEqual(lists, want) {
		t.Errorf("lists %v, want %v", lists, want)
	}
}
