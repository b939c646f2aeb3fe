package switcher

import (
	"context"
	"strings"
	"testing"

	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

func dryRunCluster() *fake.Clientset {
	spec := corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}
	return fake.NewSimpleClientset(token("app-token", "app"),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "1"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rs", ResourceVersion: "1"}, Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec}}})
}

// A client dry run sends no change; a server dry run sends each patch
// with dryRun=All (and the fake, like the server, stores nothing). Both
// report would-change, need no backup, and count as done.
func TestDryRun(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []cmdutil.DryRunStrategy{cmdutil.DryRunClient, cmdutil.DryRunServer} {
		client := dryRunCluster()
		var dry [][]string
		client.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			p := a.(k8stesting.PatchActionImpl)
			dry = append(dry, p.PatchOptions.DryRun)
			if len(p.PatchOptions.DryRun) == 1 && p.PatchOptions.DryRun[0] == metav1.DryRunAll {
				obj, err := client.Tracker().Get(a.GetResource(), a.GetNamespace(), p.Name)
				return true, obj, err
			}
			return false, nil, nil
		})
		plans, err := Find(ctx, workload.Clients{Kube: client}, FindOptions{Namespace: "ns"}, Options{})
		if err != nil || len(plans) != 2 {
			t.Fatal(plans, err)
		}
		client.ClearActions()
		out, err := Apply(ctx, workload.Clients{Kube: client}, nil, plans, ApplyOptions{DryRun: mode})
		if err != nil {
			t.Fatalf("%s: %v", kubeapi.DryRunName(mode), err)
		}
		for _, o := range out {
			if o.Result != backup.OutWouldChange || !Done(o) || !strings.Contains(o.Message, kubeapi.DryRunName(mode)+" dry run") {
				t.Errorf("%s: %+v", kubeapi.DryRunName(mode), o)
			}
			if o.Kind == "ReplicaSet" && !strings.Contains(o.Message, "keep the old token") {
				t.Errorf("%s: a ReplicaSet's dry run does not say its pods would keep the token: %s", kubeapi.DryRunName(mode), o.Message)
			}
		}
		switch mode {
		case cmdutil.DryRunClient:
			for _, a := range client.Actions() {
				if a.GetVerb() != "get" && a.GetVerb() != "list" {
					t.Errorf("client dry run sent %v", a)
				}
			}
		case cmdutil.DryRunServer:
			if len(dry) != 2 {
				t.Errorf("server dry run sent %d patches, want 2", len(dry))
			}
			for _, d := range dry {
				if len(d) != 1 || d[0] != metav1.DryRunAll {
					t.Errorf("a server dry run patch was sent with dryRun %v", d)
				}
			}
		}
		d, _ := client.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
		if d.Spec.Template.Spec.Volumes[0].Secret == nil {
			t.Errorf("%s: the template was changed", kubeapi.DryRunName(mode))
		}
	}
}

// The access check asks for get and patch of each kind the switchable
// plans change, everywhere first, then per namespace; a missing one is
// named in one line before anything is changed.
func TestCheckAccess(t *testing.T) {
	ctx := context.Background()
	client := dryRunCluster()
	var asked []string
	allow := func(ra *authorizationv1.ResourceAttributes) bool {
		return ra.Namespace == "ns" && !(ra.Verb == "patch" && ra.Resource == "replicasets")
	}
	client.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		asked = append(asked, ra.Verb+" "+ra.Resource+"."+ra.Group+" "+ra.Namespace)
		r.Status.Allowed = allow(ra)
		return true, r, nil
	})
	plans, err := Find(ctx, workload.Clients{Kube: client}, FindOptions{Namespace: "ns"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckAccess(ctx, client, plans)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "patch replicasets.apps in namespace ns") || strings.Contains(err.Error(), "deployments") {
		t.Fatalf("CheckAccess = %v; want one line naming patch replicasets.apps in ns only", err)
	}
	want := "get deployments.apps ns,patch deployments.apps ns,get replicasets.apps ns,patch replicasets.apps ns"
	if strings.Join(asked, ",") != want {
		t.Fatalf("asked %v, want %s", asked, want)
	}
	allow = func(ra *authorizationv1.ResourceAttributes) bool { return ra.Namespace == "ns" }
	if err := CheckAccess(ctx, client, plans); err != nil {
		t.Fatal(err)
	}
}
