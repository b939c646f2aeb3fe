package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

func TestSwitchRefusesBadFlagsBeforeTouchingAnything(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"switch", "--duration", "5m"}, "from 10m"},
		{[]string{"switch", "--duration", "1500ms"}, "whole seconds"},
		{[]string{"switch", "-A", "deployment/web"}, "drop -A"},
		{[]string{"switch", "web"}, "want TYPE/NAME"},
		{[]string{"switch", "service/web"}, "want TYPE/NAME"},
		{[]string{"switch", "--yes"}, "only make sense with --apply"},
		{[]string{"switch", "--backup-dir", "x"}, "only make sense with --apply"},
		{[]string{"switch", "-o", "wide"}, `--output "wide"`},
		{[]string{"switch", "-o", "name"}, "-o name lists what --apply changed"},
		{[]string{"switch", "-l", "app=x", "deploy/web"}, "not both"},
		{[]string{"switch", "--apply", "--dry-run=bogus"}, `--dry-run "bogus"`},
		{[]string{"switch", "--dry-run=server"}, "only make sense with --apply"},
		{[]string{"switch", "--apply", "--dry-run=server", "--backup-dir", "x"}, "drop --backup-dir"},
	} {
		_, stderr, code := runCmd(t, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
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
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	o := NewSwitchOptions(genericiooptions.IOStreams{In: strings.NewReader("y\n"), Out: out, ErrOut: errOut})
	o.Client, o.Namespace, o.Apply, o.Now = cs, "app", true, time.Now
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(o.Run(nil)); code != ExitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Fatalf("changed the cluster: %v", a)
		}
	}
	// Without --apply the same cluster gets a plan: diff and verdict.
	o.Apply = false
	if code := exitCode(o.Run(nil)); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out.String(), "deployment/web -n app: switchable (reads tok)") || !strings.Contains(out.String(), "+      - serviceAccountToken:") {
		t.Fatalf("plan:\n%s", out)
	}
}

// A rerun into a switch backup folder with another --duration or
// --audience is refused with one line and exit 2 before the cluster is
// read or anything is asked.
func TestSwitchResumeWithOtherTokenSettingsIsRefused(t *testing.T) {
	dir := t.TempDir() + "/b"
	b, err := legacy.OpenBackup(dir, legacy.ModeSwitch, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Settle(map[string]string{"expirationSeconds": "3607", "audience": ""}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	for _, args := range [][]string{{"--duration", "1h"}, {"--audience", "vault"}} {
		cs := fake.NewSimpleClientset()
		out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
		o := NewSwitchOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut})
		o.Client, o.Namespace, o.Apply, o.Yes, o.BackupDir = cs, "app", true, true, dir
		if args[0] == "--duration" {
			o.Duration = time.Hour
		} else {
			o.Audience = args[1]
		}
		err := o.Run(nil)
		if code := exitCode(err); code != ExitUsage || err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "finish it with the same token settings") {
			t.Errorf("%v: exit %d, %v; want exit 2 and one line", args, code, err)
		}
		if n := len(cs.Actions()); n != 0 {
			t.Errorf("%v: %d requests before refusing", args, n)
		}
	}
}
