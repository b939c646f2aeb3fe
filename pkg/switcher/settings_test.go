package switcher

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// A run interrupted after switching one of two Deployments, then rerun
// into the same folder with another token lifetime or audience: refused
// with one line naming both settings, before any change (no patch, no
// record); rerun with the first run's settings, it finishes.
func TestRerunWithOtherTokenSettingsIsRefused(t *testing.T) {
	ctx := context.Background()
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}
	mk := func(name string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	}
	client := fake.NewSimpleClientset(token("app-token", "app"), mk("first"), mk("second"))
	dir := filepath.Join(t.TempDir(), "b")
	plans := func(o Options) []*Plan {
		p, err := Find(ctx, workload.Clients{Kube: client}, FindOptions{Namespace: "ns"}, o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	// The interrupted run: default settings, only "first" switched.
	if _, err := Apply(ctx, workload.Clients{Kube: client}, b, plans(Options{})[:1], ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	for _, o := range []Options{{ExpirationSeconds: 3600}, {Audience: "vault"}} {
		if err := CheckResume(dir, o); err == nil || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%+v: CheckResume = %v, want a one-line refusal", o, err)
		}
		client.ClearActions()
		b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-02")
		if err != nil {
			t.Fatal(err)
		}
		lines := len(b.Index.Order)
		_, err = Apply(ctx, workload.Clients{Kube: client}, b, plans(o), ApplyOptions{Options: o})
		b.Close()
		if err == nil || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), "tokens of 3607 s with the API's audience") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("%+v: Apply = %v, want a one-line refusal naming the folder's settings", o, err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" && a.GetVerb() != "list" {
				t.Fatalf("%+v: changed the cluster: %v", o, a)
			}
		}
		if ix := reopen(t, dir); len(ix.Order) != lines || ix.Lookup("Deployment", "ns", "second") != nil {
			t.Fatalf("%+v: the refused run wrote to the backup", o)
		}
	}

	if err := CheckResume(dir, Options{ExpirationSeconds: DefaultExpirationSeconds}); err != nil {
		t.Fatalf("the same settings, spelt out: %v", err)
	}
	b, err = backup.Open(dir, backup.ModeSwitch, "2026-01-03")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out, err := Apply(ctx, workload.Clients{Kube: client}, b, plans(Options{}), ApplyOptions{})
	if err != nil || len(out) != 1 || out[0].Name != "second" || out[0].Result != OutSwitched {
		t.Fatalf("rerun with the same settings: %+v, %v", out, err)
	}
}

func reopen(t *testing.T, dir string) *backup.Index {
	t.Helper()
	b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-09")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return b.Index
}
