package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSwitchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "5m"}, "error: --duration 5m0s: use whole seconds from 10m to 2^32 s, as the API allows"},
		{[]string{"--duration", "1500ms"}, "error: --duration 1.5s: use whole seconds from 10m to 2^32 s, as the API allows"},
		{[]string{"-A", "deployment/web"}, "error: TYPE/NAME needs one namespace: drop -A and use -n NAMESPACE"},
		{[]string{"--yes"}, "error: --yes, --backup-dir and --dry-run only make sense with --apply"},
		{[]string{"--backup-dir", "x"}, "error: --yes, --backup-dir and --dry-run only make sense with --apply"},
		{[]string{"-o", "wide"}, `error: --output "wide" is not supported; use one of: name, ` + resultFormats},
		{[]string{"-o", "name"}, "error: -o name lists what --apply changed; without --apply use -o yaml or -o json"},
		{[]string{"-l", "app=x", "deploy/web"}, "error: give TYPE/NAME or -l, not both"},
		{[]string{"--apply", "--yes", "--qps", "0"}, "error: --concurrency, --qps and --burst must be positive"},
		{[]string{"--timeout", "0s"}, "error: --timeout must be positive"},
		{[]string{"--dry-run=server"}, "error: --yes, --backup-dir and --dry-run only make sense with --apply"},
		{[]string{"--apply", "--dry-run=server", "--backup-dir", "x"}, "error: --dry-run changes nothing and writes no backup: drop --backup-dir"},
		{[]string{"--apply", "--dry-run=bogus"}, `error: Invalid dry-run value (bogus). Must be "none", "server", or "client".`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			out, stderr, code := run(t, cmdRun{cmd: fakes{client: cs}.switchCmd}, "", append([]string{"switch"}, tc.args...)...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if diff := cmp.Diff(tc.want+"\n", stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if out != "" || len(cs.Actions()) != 0 {
				t.Errorf("a refused run printed %q and sent %v", out, cs.Actions())
			}
		})
	}
	for _, ref := range []string{"web", "service/web"} {
		if _, stderr, code := run(t, cmdRun{cmd: fakes{client: fake.NewSimpleClientset()}.switchCmd}, "", "switch", ref); code != ExitUsage || !strings.Contains(stderr, "want TYPE/NAME") {
			t.Errorf("%s: exit %d, %q", ref, code, stderr)
		}
	}
}

// --apply without --yes on a stdin that is not a terminal changes
// nothing and exits 2.
func TestSwitchApplyNeedsYesOffATerminal(t *testing.T) {
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "c", Image: "x"}},
		Volumes: []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tok"}}}}}
	cs := fake.NewSimpleClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "tok", Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
			Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("t")}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}})
	_, stderr, code := run(t, cmdRun{cmd: fakes{client: cs}.switchCmd}, "y\n", "switch", "--apply")
	if diff := cmp.Diff("error: --apply changes the cluster: add --yes to confirm (stdin is not a terminal to ask on)\n", stderr); code != ExitUsage || diff != "" {
		t.Fatalf("exit %d, want 2; stderr (-want +got):\n%s", code, diff)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Fatalf("changed the cluster: %v", a)
		}
	}
	// Without --apply the same cluster gets a plan: diff and verdict.
	out, stderr, code := run(t, cmdRun{cmd: fakes{client: cs}.switchCmd}, "", "switch")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "deployment/web -n app: switchable (reads tok)") || !strings.Contains(out, "+      - serviceAccountToken:") {
		t.Fatalf("plan:\n%s", out)
	}
	// -o jsonpath reads the rewritten manifest.
	out, _, code = run(t, cmdRun{cmd: fakes{client: cs}.switchCmd}, "", "switch", "-o", "jsonpath={.spec.template.spec.volumes[0].projected.sources[0].serviceAccountToken.path}")
	if code != 0 || out != "token" {
		t.Fatalf("jsonpath: exit %d, %q", code, out)
	}
}

// switchBackup is a new switch backup folder holding the token settings
// of a run without --duration or --audience.
func switchBackup(t *testing.T) (string, *backup.Folder) {
	t.Helper()
	dir := t.TempDir() + "/b"
	b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Settle(map[string]string{"expirationSeconds": "3607", "audience": ""}); err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// A rerun into a switch backup folder with another --duration or
// --audience is refused with one line and exit 2 before the cluster is
// read or anything is asked.
func TestSwitchResumeWithOtherTokenSettingsIsRefused(t *testing.T) {
	dir, b := switchBackup(t)
	b.Close()
	for _, args := range [][]string{{"--duration", "1h"}, {"--audience", "vault"}} {
		cs := fake.NewSimpleClientset()
		_, stderr, code := run(t, cmdRun{cmd: fakes{client: cs}.switchCmd}, "", append(append([]string{"switch"}, args...), "--apply", "--yes", "--backup-dir", dir)...)
		if code != ExitUsage || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "finish it with the same token settings") {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line", args, code, stderr)
		}
		if n := len(cs.Actions()); n != 0 {
			t.Errorf("%v: %d requests before refusing", args, n)
		}
	}
}

// A resumed switch whose backup cannot be read stops in switcher.Apply
// before any workload is changed: an unusable backup folder, exit 2 as
// documented, in one line.
func TestSwitchResumeFromABrokenBackupExits2(t *testing.T) {
	dir, b := switchBackup(t)
	rec, err := b.Save(&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web", ResourceVersion: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := os.Remove(filepath.Join(dir, rec.File)); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, cmdRun{cmd: fakes{client: fake.NewSimpleClientset()}.switchCmd}, "", "switch", "--apply", "--yes", "--backup-dir", dir)
	if code != ExitUsage || strings.Count(stderr, "error: ") != 1 || !strings.Contains(stderr, "error: cannot resume from "+dir) {
		t.Errorf("exit %d, want 2; stderr %q", code, stderr)
	}
}

// pkg/switcher words a skip without this command's flags; the plan names
// the flag that lifts it (adviseHolds), in the table and in the outcomes.
func TestSwitchNamesTheFlagThatLiftsASkip(t *testing.T) {
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "c", Image: "x"}},
		Volumes: []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tok"}}}}}
	for _, tc := range []struct {
		name, ns string
		labels   map[string]string
		want     string
	}{
		{"system namespace", "kube-system", nil, "belongs to the platform, whose operators own its workloads; --include-system to switch it anyway"},
		{"managed by Helm", "app", map[string]string{"app.kubernetes.io/managed-by": "Helm"}, "change the source (the manifest below), or --include-managed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset(
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: "tok", Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
					Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("t")}},
				&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: "web", Labels: tc.labels}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}})
			out, stderr, code := run(t, cmdRun{cmd: fakes{client: cs}.switchCmd}, "", "switch", "-A")
			if code != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, stderr %q; plan lacks %q:\n%s", code, stderr, tc.want, out)
			}
		})
	}
}
