package switcher

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// A ReplicaSet without an owner and a ReplicationController have no
// rollout: once patched they are reported changed-not-rolled (their pods
// keep the old token; the command that recreates them is named), whether
// or not the run waits; so is a paused Deployment. A Deployment that rolls
// is switched, and with --wait=false not waited for.
func TestKindsWithoutARollout(t *testing.T) {
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}
	tmpl := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: spec}
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: "1"}
	}
	rsT, rcT := tmpl("rs"), tmpl("rc")
	objs := []runtime.Object{
		&appsv1.ReplicaSet{ObjectMeta: meta("rs"), Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "rs"}}, Template: rsT}},
		&corev1.ReplicationController{ObjectMeta: meta("rc"), Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "rc"}, Template: &rcT}},
		&appsv1.Deployment{ObjectMeta: meta("paused"), Spec: appsv1.DeploymentSpec{Paused: true, Template: tmpl("paused")}},
		&appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Template: tmpl("web")}},
	}
	for _, wait := range []bool{false, true} {
		client := fake.NewSimpleClientset(append([]runtime.Object{token("app-token", "app")}, objs...)...)
		plans, err := Find(context.Background(), workload.Clients{Kube: client}, FindOptions{Namespace: "ns"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(plans) != 4 {
			t.Fatalf("%d plans, want 4", len(plans))
		}
		b, err := backup.Open(filepath.Join(t.TempDir(), "b"), backup.ModeSwitch, "2026-01-01")
		if err != nil {
			t.Fatal(err)
		}
		// The fake client keeps no status: a waited-for Deployment
		// would never roll out, so web is only judged without waiting.
		if wait {
			var keep []*Plan
			for _, p := range plans {
				if p.Name != "web" {
					keep = append(keep, p)
				}
			}
			plans = keep
		}
		out, err := Apply(context.Background(), workload.Clients{Kube: client}, b, plans, ApplyOptions{Wait: wait, Timeout: 1})
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]backup.Outcome{}
		for _, o := range out {
			got[o.Kind+"/"+o.Name] = o
		}
		for key, want := range map[string]string{
			"ReplicaSet/rs":            "kubectl delete pods -n ns -l 'app=rs'",
			"ReplicationController/rc": "kubectl delete pods -n ns -l 'app=rc'",
			"Deployment/paused":        "paused",
		} {
			o := got[key]
			if o.Result != OutNotRolled || !strings.Contains(o.Message, want) || !strings.Contains(o.Message, "keep the old token") {
				t.Errorf("wait=%v %s: %+v, want %s naming %q", wait, key, o, OutNotRolled, want)
			}
		}
		if !wait {
			if o := got["Deployment/web"]; o.Result != OutSwitched || !strings.Contains(o.Message, "rollout not waited for") {
				t.Errorf("web: %+v", o)
			}
		}
		rs, _ := client.AppsV1().ReplicaSets("ns").Get(context.Background(), "rs", metav1.GetOptions{})
		rc, _ := client.CoreV1().ReplicationControllers("ns").Get(context.Background(), "rc", metav1.GetOptions{})
		if rs.Spec.Template.Spec.Volumes[0].Projected == nil || rc.Spec.Template.Spec.Volumes[0].Projected == nil {
			t.Errorf("wait=%v: templates not rewritten: %+v %+v", wait, rs.Spec.Template.Spec.Volumes, rc.Spec.Template.Spec.Volumes)
		}
	}
}
