package switcher

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// A run killed after its patch but before its record: the rerun finds the
// template the switch of the backup gives, records it once, and does not
// patch it again; a template changed by someone else is left alone.
func TestResumeRecordsAPatchWhoseRecordWasLost(t *testing.T) {
	ctx := context.Background()
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}
	mk := func(name string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "5"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	}
	lost, other := mk("lost"), mk("other")
	client := fake.NewSimpleClientset(token("app-token", "app"), lost.DeepCopy(), other.DeepCopy())
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := b.SaveBatch([]runtime.Object{lost, other}); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	// The killed run's patch of "lost" went through; "other" was then
	// changed by someone else.
	wl, _ := NewWorkload(lost.DeepCopy())
	p := MakePlan(wl, tokens(token("app-token", "app")), Options{})
	d := lost.DeepCopy()
	d.Spec.Template = *p.Template
	if _, err := client.AppsV1().Deployments("ns").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	o := other.DeepCopy()
	o.Spec.Template.Spec.Volumes[0].Secret.SecretName = "something-else"
	if _, err := client.AppsV1().Deployments("ns").Update(ctx, o, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b, err = backup.Open(dir, backup.ModeSwitch, "2026-01-02")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	plans, err := Find(ctx, workload.Clients{Kube: client}, FindOptions{Namespace: "ns"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 0 {
		t.Fatalf("nothing reads the Secret now, yet %d plans", len(plans))
	}
	patches := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" {
			patches++
		}
	}
	out, err := Apply(ctx, workload.Clients{Kube: client}, b, plans, ApplyOptions{Wait: false})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]backup.Outcome{}
	for _, o := range out {
		got[o.Name] = o
	}
	if o := got["lost"]; o.Result != OutSwitched || !strings.Contains(o.Message, "interrupted run") {
		t.Fatalf("lost: %+v", o)
	}
	if o := got["other"]; o.Result != backup.OutSkipChanged {
		t.Fatalf("other: %+v", o)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" {
			patches--
		}
	}
	if patches != 0 {
		t.Fatalf("the rerun patched %d time(s); the rewrite was already done", -patches)
	}
	e := b.Entry("Deployment", "ns", "lost")
	if e == nil || !e.Results.Has(ResultSwitched) || e.Done.Template != workload.TemplateSum(p.Template) {
		t.Fatalf("lost is not recorded with its template: %+v", e)
	}
	if e := b.Entry("Deployment", "ns", "other"); e.Results.Has(ResultSwitched) {
		t.Fatal("other is recorded as switched")
	}
}
