package switcher

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// A status write between restore's read and its patch moves the
// resourceVersion but not the template (a ReplicaSet's controller writes
// one whenever its pods change): restore reads again and puts the template
// back, rather than reporting it changed.
func TestRestoreAfterAStatusWrite(t *testing.T) {
	ctx := context.Background()
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rs", UID: "uid-rs", ResourceVersion: "1"},
		Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	client := fake.NewSimpleClientset(token("app-token", "app"), rs.DeepCopy())
	dir := filepath.Join(t.TempDir(), "b")
	b, err := backup.Open(dir, backup.ModeSwitch, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	plans, err := Find(ctx, workload.Clients{Kube: client}, FindOptions{Namespace: "ns"}, Options{})
	if err != nil || len(plans) != 1 {
		t.Fatal(plans, err)
	}
	if _, err := Apply(ctx, workload.Clients{Kube: client}, b, plans, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	// The first restore patch finds a status written just before it.
	statusWrites := 0
	client.PrependReactor("patch", "replicasets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if statusWrites > 0 {
			return false, nil, nil
		}
		statusWrites++
		cur, err := client.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("replicasets"), "ns", "rs")
		if err != nil {
			return true, nil, err
		}
		c := cur.(*appsv1.ReplicaSet).DeepCopy()
		c.ResourceVersion = "99"
		c.Status.Replicas = 1
		if err := client.Tracker().Update(appsv1.SchemeGroupVersion.WithResource("replicasets"), c, "ns"); err != nil {
			return true, nil, err
		}
		// What kube-apiserver answers to a failed "test" (applyJSPatch).
		return true, nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{Group: "apps", Resource: "replicasets"}, "rs", "testing value /metadata/resourceVersion failed", 0, false)
	})
	f, err := backup.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenRestore(f)
	if err != nil {
		t.Fatal(err)
	}
	// No Secret is read again by the template put back: nothing blocks.
	none := func(context.Context, string, []string) ([]string, error) { return nil, nil }
	out := Restore(ctx, workload.Clients{Kube: client}, r, RestoreOptions{Blocking: none})
	if len(out) != 1 || out[0].Result != OutRestored {
		t.Fatalf("restore: %+v", out)
	}
	got, _ := client.AppsV1().ReplicaSets("ns").Get(ctx, "rs", metav1.GetOptions{})
	if workload.TemplateSum(&got.Spec.Template) != workload.TemplateSum(&rs.Spec.Template) || statusWrites != 1 {
		t.Fatalf("template not put back (status writes %d): %+v", statusWrites, got.Spec.Template.Spec.Volumes)
	}
}
