package cmd

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

func TestBackupFolderCompletion(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, d := range []string{"bound-token-backup-1", "bound-token-backup-2", "other"} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bound-token-backup-1", "other"} {
		if err := os.WriteFile(filepath.Join(d, "index.jsonl"), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"__complete", "restore", "--from", ""},
		{"__complete", "migrate", "--apply", "--backup-dir", ""},
	} {
		out, _, code := runCmd(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := strings.Join(lines[:len(lines)-1], " ")
		if got != "bound-token-backup-1 other" {
			t.Errorf("%v completes %q, want the folders holding an index", args, got)
		}
	}
	// No backup under the prefix: fall back to folder completion.
	out, _, _ := runCmd(t, "", "__complete", "restore", "--from", "zz")
	if !strings.HasSuffix(strings.TrimSpace(out), ":16") {
		t.Errorf("want the filter-folders directive (:16), got %q", out)
	}
}

func TestMigrateRefusesBadFlagsBeforeTouchingAnything(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--mode", "wipe"}, `--mode "wipe"`},
		{[]string{"migrate", "--dry-run=server"}, "only make sense with --apply"},
		{[]string{"migrate", "--apply", "--dry-run=server", "--backup-dir", "x"}, "writes no backup"},
		{[]string{"migrate", "--unused-for", "ninety"}, "--unused-for"},
		{[]string{"migrate", "-o", "table"}, `--output "table"`},
		{[]string{"migrate", "--include-used"}, "only make sense with --apply"},
		{[]string{"migrate", "--yes"}, "only make sense with --apply"},
		{[]string{"migrate", "--unused-for", "12h"}, "at least 1d"},
		{[]string{"migrate", "--cleanup-period", "0d"}, "--cleanup-period"},
		{[]string{"migrate", "-A", "tok-1"}, "drop -A"},
		{[]string{"restore"}, "--from DIR is required"},
		{[]string{"restore", "--from", "x", "--dry-run=maybe"}, `--dry-run "maybe"`},
	} {
		_, stderr, code := runCmd(t, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
}

// oldCluster is a fake cluster tracking use for 400 days, with one
// auto-generated legacy token nobody used.
func oldCluster(now time.Time) *fake.Clientset {
	return fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: legacy.TrackingNamespace, Name: legacy.TrackingConfigMap},
			Data: map[string]string{"since": now.AddDate(0, 0, -400).Format("2006-01-02")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}, Secrets: []corev1.ObjectReference{{Name: "tok"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "tok", Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"},
			CreationTimestamp: metav1.NewTime(now.AddDate(-3, 0, 0))}, Type: corev1.SecretTypeServiceAccountToken})
}

func migrateOn(cs *fake.Clientset, now time.Time, stdin string) (*MigrateOptions, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	o := NewMigrateOptions(genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: out, ErrOut: errOut})
	o.Client, o.Namespace, o.Now = cs, "app", func() time.Time { return now }
	return o, out, errOut
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*ExitError); ok {
		return ee.Code
	}
	return -1
}

func TestMigrateApplyNeedsYesWithoutATerminal(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cs := oldCluster(now)
	o, _, _ := migrateOn(cs, now, "y\n")
	o.Apply, o.BackupDir = true, filepath.Join(t.TempDir(), "b")
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	err := o.Run(context.Background())
	if exitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("want exit 2 naming --yes, got %v", err)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("a refused run sent %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if _, err := os.Stat(o.BackupDir); !os.IsNotExist(err) {
		t.Errorf("a refused run made its backup folder: %v", err)
	}
}

func TestMigrateWideShowsTheCleanerForecast(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	o, out, errOut := migrateOn(oldCluster(now), now, "")
	*o.PrintFlags.OutputFormat = "wide"
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "CLEANER-INVALIDATES") || !strings.Contains(out.String(), "2026-12-01") || !strings.Contains(out.String(), "invalidate") {
		t.Errorf("wide table:\n%s", out)
	}
	if !strings.Contains(errOut.String(), "only if it runs") || !strings.Contains(errOut.String(), "tracked since "+now.AddDate(0, 0, -400).Format("2006-01-02")) {
		t.Errorf("stderr does not say what the verdicts rest on:\n%s", errOut)
	}
}

func TestMigrateAuditLogErrorsChangeNothing(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(strings.Repeat(`{"kind":"Event"}`+"\n", 100)))
	_ = w.Close()
	corrupt := filepath.Join(dir, "corrupt.log.gz")
	if err := os.WriteFile(corrupt, gz.Bytes()[:gz.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.log"), corrupt} {
		cs := oldCluster(now)
		o, _, _ := migrateOn(cs, now, "")
		o.AuditLogs = []string{path}
		o.Apply, o.Yes, o.BackupDir = true, true, filepath.Join(dir, "b")
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		err := o.Run(context.Background())
		if exitCode(err) != ExitUsage || !strings.Contains(err.Error(), filepath.Base(path)) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one line, exit 2, naming the file; got %v", path, err)
		}
		if len(cs.Actions()) != 0 {
			t.Errorf("%s: the cluster was called before the evidence was complete: %v", path, cs.Actions())
		}
	}
}

// TestMigrateJSONIsThePrintersDocument: the streamed -o json is byte for
// byte what cli-runtime's JSON printer writes for the same report.
func TestMigrateJSONIsThePrintersDocument(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, cs := range []*fake.Clientset{oldCluster(now), fake.NewSimpleClientset()} {
		o, out, _ := migrateOn(cs, now, "")
		*o.PrintFlags.OutputFormat = "json"
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		var r legacy.Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		p, err := o.PrintFlags.ToPrinter()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := p.PrintObj(&r, &want); err != nil {
			t.Fatal(err)
		}
		if out.String() != want.String() {
			t.Errorf("streamed:\n%s\nprinter:\n%s", out, &want)
		}
	}
}
