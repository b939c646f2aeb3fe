package legacy

import (
	"context"
	"path/filepath"
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

// deleteFixture: a token invalid for long, listed by its ServiceAccount.
func deleteFixture() *fake.Clientset {
	s := legacyToken("app", "tok", "sa")
	s.UID, s.ResourceVersion = "uid-tok", "7"
	s.Annotations[corev1.ServiceAccountUIDKey] = "sa-uid"
	s.Labels = map[string]string{LabelInvalidSince: dayAgo(300)}
	s.Data = map[string][]byte{"token": []byte("secret-token-value")}
	return fake.NewClientset(trackingConfigMap(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa", UID: "sa-uid", ResourceVersion: "3"}, Secrets: []corev1.ObjectReference{{Name: "other"}, {Name: "tok"}}},
		s)
}

func saSecrets(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	sa, err := cs.CoreV1().ServiceAccounts("app").Get(context.Background(), "sa", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range sa.Secrets {
		out = append(out, r.Name)
	}
	return out
}

// TestDeleteBacksUpTheServiceAccountAndRestoreListsTheSecretAgain: delete
// backs up the Secret and its ServiceAccount before it deletes the Secret
// and removes it from the ServiceAccount's list; restore re-creates it and
// lists it again.
func TestDeleteBacksUpTheServiceAccountAndRestoreListsTheSecretAgain(t *testing.T) {
	ctx := context.Background()
	cs := deleteFixture()
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeDelete, dayOf(now))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeDelete, Date: dayOf(now)})
	b.Close()
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != OutDeleted {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if _, err := cs.CoreV1().Secrets("app").Get(ctx, "tok", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret not deleted: %v", err)
	}
	if got := saSecrets(t, cs); len(got) != 1 || got[0] != "other" {
		t.Errorf("service account lists %v, want [other]", got)
	}
	f, err := backup.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e := f.Index.Lookup(KindServiceAccount, "app", "sa"); e == nil || e.Backup == nil {
		t.Fatal("service account not backed up")
	}
	if e := f.Index.Lookup(KindSecret, "app", "tok"); !e.Results.Has(ResultDeleted) || !e.Results.Has(ResultRefRemoved) {
		t.Errorf("results %v", e.Results)
	}

	r, err := OpenRestore(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Count() != 1 {
		t.Errorf("Count %d", r.Count())
	}
	// A client dry run says what it would do and does nothing.
	dry := results(Restore(ctx, cs, r, RestoreOptions{DryRun: cmdutil.DryRunClient}))
	if dry["tok"] != backup.OutWouldChange || dry["sa"] != backup.OutWouldChange || len(saSecrets(t, cs)) != 1 {
		t.Errorf("dry run %v", dry)
	}
	out := Restore(ctx, cs, r, RestoreOptions{})
	got := results(out)
	if got["tok"] != OutRecreated || got["sa"] != OutRefRestored {
		t.Fatalf("restore %+v", out)
	}
	for _, o := range out {
		if o.Name == "sa" && o.Kind != KindServiceAccount {
			t.Errorf("service account outcome without its kind: %+v", o)
		}
	}
	if got := saSecrets(t, cs); len(got) != 2 {
		t.Errorf("service account lists %v after restore", got)
	}
	// Again: the reference is there, nothing is reported for it.
	if got := results(Restore(ctx, cs, r, RestoreOptions{})); got["tok"] != backup.OutUnchanged {
		t.Errorf("second restore %v", got)
	} else if _, ok := got["sa"]; ok {
		t.Errorf("second restore reported the service account: %v", got)
	}
}

// TestRestoreRefsWhenTheServiceAccountIsGone: its tokens cannot come back
// to life; restore says so and fails.
func TestRestoreRefsWhenTheServiceAccountIsGone(t *testing.T) {
	ctx := context.Background()
	cs := deleteFixture()
	dir := filepath.Join(t.TempDir(), "b")
	b, _ := backup.Open(dir, backup.ModeDelete, dayOf(now))
	if _, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeDelete, Date: dayOf(now)}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	cs.CoreV1().ServiceAccounts("app").Delete(ctx, "sa", metav1.DeleteOptions{})
	r, err := inspectRestore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range Restore(ctx, cs, r, RestoreOptions{}) {
		if o.Name == "sa" && (o.Result != backup.OutFailed || o.Kind != KindServiceAccount) {
			t.Errorf("%+v", o)
		}
	}
}

// TestDeleteWhenTheReferenceCannotBeRemoved: the Secret is deleted, its
// ServiceAccount still lists it: the outcome says so and fails the run,
// and no ref-removed record is written.
func TestDeleteWhenTheReferenceCannotBeRemoved(t *testing.T) {
	ctx := context.Background()
	cs := deleteFixture()
	cs.PrependReactor("patch", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts"}, "sa", nil)
	})
	dir := filepath.Join(t.TempDir(), "b")
	b, _ := backup.Open(dir, backup.ModeDelete, dayOf(now))
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeDelete, Date: dayOf(now)})
	b.Close()
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != backup.OutDeletedRefLeft || !res.Outcomes[0].Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	f, _ := backup.Inspect(dir)
	if e := f.Index.Lookup(KindSecret, "app", "tok"); !e.Results.Has(ResultDeleted) || e.Results.Has(ResultRefRemoved) {
		t.Errorf("results %v", e.Results)
	}
}

// TestDeleteRefusedByAPrecondition: someone changed the Secret after it
// was listed: the delete's uid and resourceVersion preconditions fail and
// it is left alone.
func TestDeleteRefusedByAPrecondition(t *testing.T) {
	ctx := context.Background()
	cs := deleteFixture()
	cs.PrependReactor("delete", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		s, _ := cs.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "app", "tok")
		c := s.(*corev1.Secret).DeepCopy()
		c.ResourceVersion = "8"
		c.Labels["x"] = "someone"
		cs.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, c, "app")
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "tok", nil)
	})
	dir := filepath.Join(t.TempDir(), "b")
	b, _ := backup.Open(dir, backup.ModeDelete, dayOf(now))
	res, err := Apply(ctx, cs, b, ScanOptions{Namespace: "app", Now: now}, ApplyOptions{Mode: backup.ModeDelete, Date: dayOf(now)})
	b.Close()
	if err != nil || len(res.Outcomes) != 1 || res.Outcomes[0].Result != backup.OutSkipChanged {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if got := saSecrets(t, cs); len(got) != 2 {
		t.Errorf("service account changed: %v", got)
	}
}
