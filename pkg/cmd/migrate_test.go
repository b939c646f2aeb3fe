package cmd

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"

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
		out, _, code := run(t, cmdRun{}, "", args...)
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
	out, _, _ := run(t, cmdRun{}, "", "__complete", "restore", "--from", "zz")
	if !strings.HasSuffix(strings.TrimSpace(out), ":16") {
		t.Errorf("want the filter-folders directive (:16), got %q", out)
	}
}

// TestMigrateAndRestoreRefuseBadFlags: every bad flag is one line and exit
// 2, before the cluster is called (the fake clientset records no action)
// and before any folder is made.
func TestMigrateAndRestoreRefuseBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--mode", "wipe"}, `error: --mode "wipe": use invalidate or delete`},
		{[]string{"migrate", "--dry-run=server"}, "error: --dry-run, --backup-dir, --yes and --include-* only make sense with --apply"},
		{[]string{"migrate", "--apply", "--dry-run=server", "--backup-dir", "x"}, "error: a dry run writes no backup: drop --backup-dir"},
		{[]string{"migrate", "--unused-for", "ninety"}, `error: --unused-for: invalid duration "ninety": use forms like 90d, 36h or 1d12h`},
		{[]string{"migrate", "-o", "table"}, `error: --output "table" is not supported; use one of: wide, name, json, yaml, kyaml, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file`},
		{[]string{"migrate", "--include-used"}, "error: --dry-run, --backup-dir, --yes and --include-* only make sense with --apply"},
		{[]string{"migrate", "--yes"}, "error: --dry-run, --backup-dir, --yes and --include-* only make sense with --apply"},
		{[]string{"migrate", "--report", "--apply", "--yes"}, "error: --report writes an audit and --apply changes Secrets: run --apply first, then the same audit with --report (without --apply) to publish its effect"},
		{[]string{"migrate", "--unused-for", "12h"}, "error: --unused-for 12h: use at least 1d (the last-used label holds a day)"},
		{[]string{"migrate", "--cleanup-period", "0d"}, `error: --cleanup-period "0d": use a positive duration such as 365d`},
		{[]string{"migrate", "-A", "tok-1"}, "error: Secret names need one namespace: drop -A and use -n NAMESPACE"},
		{[]string{"migrate", "--apply", "--concurrency", "0", "--yes"}, "error: --concurrency, --qps and --burst must be positive"},
		{[]string{"migrate", "--mode"}, "error: flag needs an argument: --mode; see 'kubectl bound-token migrate --help' for usage"},
		{[]string{"migrate", "--revoke"}, "error: --revoke, --guard-for and --reinvalidate-restored only make sense with --apply --mode invalidate"},
		{[]string{"migrate", "--guard-for", "30d"}, "error: --revoke, --guard-for and --reinvalidate-restored only make sense with --apply --mode invalidate"},
		{[]string{"migrate", "--apply", "--mode", "delete", "--reinvalidate-restored", "--yes"}, "error: --revoke, --guard-for and --reinvalidate-restored only make sense with --apply --mode invalidate"},
		{[]string{"migrate", "--apply", "--revoke", "--guard-for", "30d", "--yes"}, "error: --revoke writes no guard: drop --guard-for"},
		{[]string{"migrate", "--apply", "--guard-for", "0d", "--yes"}, `error: --guard-for "0d": use a whole number of days, at least 1d, such as 90d (the guard day is a day)`},
		{[]string{"migrate", "--apply", "--guard-for", "1d12h", "--yes"}, `error: --guard-for "1d12h": use a whole number of days, at least 1d, such as 90d (the guard day is a day)`},
		{[]string{"migrate", "--apply", "--guard-for", "-3d", "--yes"}, `error: --guard-for "-3d": use a whole number of days, at least 1d, such as 90d (the guard day is a day)`},
		{[]string{"restore"}, "error: --from DIR is required: the backup folder that migrate --apply printed"},
		{[]string{"restore", "--from", "x", "--dry-run=maybe"}, `error: Invalid dry-run value (maybe). Must be "none", "server", or "client".`},
		// The printer is built before anything is restored.
		{[]string{"restore", "--from", "x", "-o", "wide"}, `error: --output "wide" is not supported; use one of: name, json, yaml, kyaml, go-template, go-template-file, template, templatefile, jsonpath, jsonpath-as-json, jsonpath-file`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			cs := fake.NewSimpleClientset()
			with := cmdRun{cmd: fakes{client: cs}.migrate}
			if tc.args[0] == "restore" {
				with.cmd = fakes{client: cs}.restore
			}
			out, errOut, code := run(t, with, "", tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if diff := cmp.Diff(tc.want+"\n", errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if out != "" || len(cs.Actions()) != 0 {
				t.Errorf("a refused run printed %q and sent %v", out, cs.Actions())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused run made %v", entries)
			}
		})
	}
}

// oldCluster is a fake cluster tracking use for 400 days, with one
// auto-generated legacy token nobody used.
func oldCluster(now time.Time) *fake.Clientset {
	return fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: legacy.TrackingNamespace, Name: legacy.TrackingConfigMap},
			Data: map[string]string{"since": now.AddDate(0, 0, -400).Format("2006-01-02")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "sa"}, Secrets: []corev1.ObjectReference{{Name: "tok"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "tok", ResourceVersion: "1", Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"},
			CreationTimestamp: metav1.NewTime(now.AddDate(-3, 0, 0))}, Type: corev1.SecretTypeServiceAccountToken})
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
	backup := filepath.Join(t.TempDir(), "b")
	_, stderr, code := run(t, cmdRun{cmd: fakes{client: cs, now: now}.migrate}, "y\n", "migrate", "--apply", "--backup-dir", backup)
	if diff := cmp.Diff("error: --apply changes the cluster: add --yes to confirm (stdin is not a terminal to ask on)\n", stderr); code != ExitUsage || diff != "" {
		t.Fatalf("exit %d, stderr (-want +got):\n%s", code, diff)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("a refused run sent %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if _, err := os.Stat(backup); !os.IsNotExist(err) {
		t.Errorf("a refused run made its backup folder: %v", err)
	}
}

func TestMigrateWideShowsTheCleanerForecast(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	out, errOut, code := run(t, cmdRun{cmd: fakes{client: oldCluster(now), now: now}.migrate}, "", "migrate", "-o", "wide")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "CLEANER-INVALIDATES") || !strings.Contains(out, "2026-12-01") || !strings.Contains(out, "invalidate") {
		t.Errorf("wide table:\n%s", out)
	}
	if !strings.Contains(errOut, "only if it runs") || !strings.Contains(errOut, "tracked since "+now.AddDate(0, 0, -400).Format("2006-01-02")) {
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
		_, stderr, code := run(t, cmdRun{cmd: fakes{client: cs, now: now}.migrate}, "", "migrate", "--audit-log", path, "--apply", "--yes", "--backup-dir", filepath.Join(dir, "b"))
		if code != ExitUsage || !strings.Contains(stderr, filepath.Base(path)) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: want one line, exit 2, naming the file; got %d %q", path, code, stderr)
		}
		if len(cs.Actions()) != 0 {
			t.Errorf("%s: the cluster was called before the evidence was complete: %v", path, cs.Actions())
		}
	}
}

// TestMigrateStreamIsThePrintersDocument: the streamed -o json and -o
// yaml are byte for byte what cli-runtime's printers write for the same
// report.
func TestMigrateStreamIsThePrintersDocument(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, format := range []string{"json", "yaml"} {
		for _, cs := range []*fake.Clientset{oldCluster(now), fake.NewSimpleClientset()} {
			out, stderr, code := run(t, cmdRun{cmd: fakes{client: cs, now: now}.migrate}, "", "migrate", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var r legacy.Report
			if err := yaml.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("not %s: %v\n%s", format, err, out)
			}
			p, err := toPrinter(NewMigrateOptions(genericiooptions.IOStreams{}).PrintFlags.WithDefaultOutput(format))
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := p.PrintObj(&r, &want); err != nil {
				t.Fatal(err)
			}
			if out != want.String() {
				t.Errorf("%s streamed:\n%s\nprinter:\n%s", format, out, &want)
			}
		}
	}
}

// failingWriter accepts n bytes, then fails, as a closed pipe does.
type failingWriter struct {
	w io.Writer
	n int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		f.w.Write(p[:f.n])
		f.n = 0
		return 0, errors.New("write /dev/stdout: broken pipe")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

// manySecrets is a cluster with n legacy token Secrets of one
// ServiceAccount, unused since tracking began.
func manySecrets(now time.Time, n int) *fake.Clientset {
	cs := oldCluster(now)
	for i := 0; i < n; i++ {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: fmt.Sprintf("tok-%05d", i), ResourceVersion: "1", Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"},
			CreationTimestamp: metav1.NewTime(now.AddDate(-3, 0, 0))}, Type: corev1.SecretTypeServiceAccountToken}
		if err := cs.Tracker().Add(s); err != nil {
			panic(err)
		}
	}
	return cs
}

// TestMigrateTableStreams: the table is written in windows with one
// header and the summary at the end, every Secret once; a write that fails
// midway stops the audit with exit 1 and a line saying the output is
// incomplete, for every streamed format.
func TestMigrateTableStreams(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	out, stderr, code := run(t, cmdRun{cmd: fakes{client: manySecrets(now, 2*auditWindow+7), now: now}.migrate}, "", "migrate")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Count(out, "NAMESPACE") != 1 || strings.Count(out, "\napp ") != 2*auditWindow+8 || !strings.Contains(out, fmt.Sprintf("%d legacy token Secrets", 2*auditWindow+8)) {
		t.Errorf("table: %d headers, %d rows\n%s", strings.Count(out, "NAMESPACE"), strings.Count(out, "\napp "), out[len(out)-300:])
	}
	for _, format := range []string{"", "json", "yaml", "name"} {
		cs := manySecrets(now, 2000)
		cmd := func(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
			s.Out = &failingWriter{w: s.Out, n: 20000}
			return fakes{client: cs, now: now}.migrate(f, s)
		}
		_, stderr, code := run(t, cmdRun{cmd: cmd}, "", "migrate", "-o", format)
		if code != ExitFailed || !strings.Contains(stderr, "broken pipe; the output above is incomplete") {
			t.Errorf("-o %q: exit %d, stderr %q", format, code, stderr)
		}
	}
}

// secretMetadata is a fake metadata-only client serving the metadata of
// cs's Secrets, as kube-apiserver does for as=PartialObjectMetadataList.
func secretMetadata(t *testing.T, cs *fake.Clientset) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	scheme.AddKnownTypeWithName(corev1.SchemeGroupVersion.WithKind("Secret"), &metav1.PartialObjectMetadata{})
	l, err := cs.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, s := range l.Items {
		objs = append(objs, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: s.ObjectMeta})
	}
	cs.ClearActions()
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

// An audit (every -o, and the count shown before --apply asks) reads the
// Secrets' metadata only: the tokens never leave the cluster. --apply
// lists them whole, for the backup.
func TestAuditListsSecretMetadataOnly(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		args      []string
		wholeList bool
	}{
		{args: nil},
		{args: []string{"-o", "json"}},
		{args: []string{"-o", "yaml"}},
		{args: []string{"--apply", "--dry-run=client"}, wholeList: true},
	} {
		t.Run(strings.Join(append([]string{"migrate"}, tc.args...), " "), func(t *testing.T) {
			cs := oldCluster(now)
			cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
				r.Status.Allowed = true
				return true, r, nil
			})
			md := secretMetadata(t, cs)
			out, errOut, code := run(t, cmdRun{cmd: fakes{client: cs, metadata: md, now: now}.migrate}, "", append([]string{"migrate"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "tok") {
				t.Errorf("the Secret is not in the output:\n%s", out)
			}
			whole := false
			for _, a := range cs.Actions() {
				if a.GetResource().Resource == "secrets" && a.GetVerb() == "list" {
					whole = true
				}
			}
			if whole != tc.wholeList {
				t.Errorf("Secrets listed whole: %v, want %v (actions %v)", whole, tc.wholeList, cs.Actions())
			}
			if !tc.wholeList && len(md.Actions()) == 0 {
				t.Errorf("the metadata client was not asked")
			}
		})
	}
}

// allowAll answers every SelfSubjectAccessReview yes.
func allowAll(cs *fake.Clientset) *fake.Clientset {
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	return cs
}

// withRV gives the Secret a resourceVersion, which a backup needs (the
// fake keeps the one an object is created with).
func withRV(cs *fake.Clientset) *fake.Clientset {
	s, _ := cs.CoreV1().Secrets("app").Get(context.Background(), "tok", metav1.GetOptions{})
	s.ResourceVersion = "5"
	_, _ = cs.CoreV1().Secrets("app").Update(context.Background(), s, metav1.UpdateOptions{})
	return cs
}

// TestMigrateApplyMarksAndRestoredOnUse: --apply writes the marks with the
// run's day, --revoke writes no guard, and a Secret a guard restored is
// audited restored-on-use and left alone without --reinvalidate-restored.
func TestMigrateApplyMarksAndRestoredOnUse(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		args  []string
		guard string
		for_  string
	}{
		{nil, "2027-03-01", legacy.InvalidatedForCleanUp},
		{[]string{"--guard-for", "7d"}, "2026-12-08", legacy.InvalidatedForCleanUp},
		{[]string{"--revoke"}, "", legacy.InvalidatedForRevocation},
	} {
		cs := withRV(allowAll(oldCluster(now)))
		args := append([]string{"migrate", "--apply", "--yes", "--backup-dir", filepath.Join(t.TempDir(), "b"), "-o", "json"}, tc.args...)
		if _, stderr, code := run(t, cmdRun{cmd: fakes{client: cs, now: now}.migrate}, "", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		s, err := cs.CoreV1().Secrets("app").Get(context.Background(), "tok", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Labels[legacy.LabelInvalidSince] != "2026-12-01" || s.Labels[legacy.LabelGuardUntil] != tc.guard ||
			s.Annotations[legacy.AnnotationInvalidatedFor] != tc.for_ || s.Annotations[legacy.AnnotationInvalidatedOn] != "2026-12-01" ||
			s.Annotations[legacy.AnnotationLastUsedBefore] != legacy.LastUsedNone {
			t.Errorf("%v: labels %v annotations %v", tc.args, s.Labels, s.Annotations)
		}
	}

	cs := withRV(allowAll(oldCluster(now)))
	restored := `{"metadata":{"labels":{"kubernetes.io/legacy-token-last-used":"2026-11-30"},"annotations":{"bound-token.kubectl.io/invalidated-on":"2026-11-02","bound-token.kubectl.io/restored-on-use":"2026-11-30","bound-token.kubectl.io/restored-by":"guard-watch"}}}`
	if _, err := cs.CoreV1().Secrets("app").Patch(context.Background(), "tok", "application/merge-patch+json", []byte(restored), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, cmdRun{cmd: fakes{client: cs, now: now}.migrate}, "", "migrate")
	if code != 0 || !strings.Contains(out, "restored-on-use") || !strings.Contains(out, "a client presented it on 2026-11-30") || !strings.Contains(out, "1 restored-on-use") {
		t.Errorf("audit: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--include-used", "--include-unknown"}, legacy.OutSkipRestored},
		{[]string{"--reinvalidate-restored"}, legacy.OutInvalidated},
	} {
		out, errOut, code := run(t, cmdRun{cmd: fakes{client: cs, now: now}.migrate}, "", append([]string{"migrate", "--apply", "--yes", "--backup-dir", filepath.Join(t.TempDir(), "b"), "-o", "json"}, tc.flags...)...)
		if code != 0 || !strings.Contains(out, `"result": "`+tc.want+`"`) {
			t.Errorf("%v: exit %d, want %s\n%s\n%s", tc.flags, code, tc.want, out, errOut)
		}
	}
	s, _ := cs.CoreV1().Secrets("app").Get(context.Background(), "tok", metav1.GetOptions{})
	if _, ok := s.Annotations[legacy.AnnotationRestoredOnUse]; ok || s.Annotations[legacy.AnnotationLastUsedBefore] != "2026-11-30" {
		t.Errorf("invalidated again: annotations %v", s.Annotations)
	}
}

// TestMigrateApplyStreamsItsOutcomes: --apply writes its outcomes as they
// come (one header, every Secret once, the summary on stderr); a write
// that fails midway ends the run with exit 1, a line saying the output is
// incomplete, and how to finish.
func TestMigrateApplyStreamsItsOutcomes(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	n := 2*auditWindow + 7
	allowed := func(cs *fake.Clientset) *fake.Clientset {
		cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
			r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
			r.Status.Allowed = true
			return true, r, nil
		})
		return cs
	}
	out, stderr, code := run(t, cmdRun{cmd: fakes{client: allowed(manySecrets(now, n)), now: now}.migrate}, "",
		"migrate", "--apply", "--yes", "--include-unknown", "--backup-dir", filepath.Join(t.TempDir(), "b"))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out[:min(len(out), 500)])
	}
	if strings.Count(out, "NAMESPACE") != 1 || strings.Count(out, "\napp ") != n+1 || !strings.Contains(stderr, fmt.Sprintf("summary: %d invalidated", n+1)) {
		t.Errorf("table: %d headers, %d rows; stderr %s", strings.Count(out, "NAMESPACE"), strings.Count(out, "\napp "), stderr)
	}
	for _, format := range []string{"", "json", "name"} {
		cs := allowed(manySecrets(now, 2000))
		cmd := func(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
			s.Out = &failingWriter{w: s.Out, n: 20000}
			return fakes{client: cs, now: now}.migrate(f, s)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if format == "name" {
			// name lines are short: fail later than the first window.
			cmd = func(f cmdutil.Factory, s genericiooptions.IOStreams) *cobra.Command {
				s.Out = &failingWriter{w: s.Out, n: 5000}
				return fakes{client: cs, now: now}.migrate(f, s)
			}
		}
		_, stderr, code := run(t, cmdRun{cmd: cmd}, "", "migrate", "--apply", "--yes", "--include-unknown", "--backup-dir", dir, "-o", format)
		if code != ExitFailed || !strings.Contains(stderr, "broken pipe; the output above is incomplete") || !strings.Contains(stderr, "--backup-dir "+dir+" to finish") {
			t.Errorf("-o %q: exit %d, stderr %q", format, code, stderr)
		}
	}
}
