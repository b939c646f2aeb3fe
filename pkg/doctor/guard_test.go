package doctor

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/bound-token/kubectl-bound-token/pkg/guard"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// guardFake is a cluster serving the policy at v1 (or nothing), with one
// Secret migrate --apply invalidated when guarded, whose impersonated
// client answers kube-apiserver's patch restored when acting.
func guardFake(t *testing.T, served, guarded, acting bool) *guard.Cluster {
	t.Helper()
	cs := fake.NewClientset()
	res := []metav1.APIResource{{Name: "validatingadmissionpolicies"}}
	if served {
		res = append(res, metav1.APIResource{Name: mapResource}, metav1.APIResource{Name: "mutatingadmissionpolicybindings"})
	}
	cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{GroupVersion: guard.Group + "/v1", APIResources: res}}
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		r := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	scheme := runtime.NewScheme()
	_ = metav1.AddMetaToScheme(scheme)
	var secrets []runtime.Object
	if guarded {
		secrets = append(secrets, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "yearly-token", UID: "u",
			Labels:      map[string]string{legacy.LabelInvalidSince: "2026-12-01", legacy.LabelGuardUntil: "2027-03-01"},
			Annotations: map[string]string{legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp, legacy.AnnotationLastUsedBefore: legacy.LastUsedNone},
		}})
	}
	as := fake.NewClientset()
	as.PrependReactor("patch", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "yearly-token", Namespace: "ns", Labels: map[string]string{legacy.LabelInvalidSince: "2026-12-01"}}}
		if acting {
			s.Labels = nil
			s.Annotations = map[string]string{legacy.AnnotationRestoredOnUse: "2027-03-01", legacy.AnnotationRestoredBy: legacy.RestoredByPolicy}
		}
		return true, s, nil
	})
	lists := map[schema.GroupVersionResource]string{
		guard.PolicyResource("v1"): "MutatingAdmissionPolicyList", guard.BindingResource("v1"): "MutatingAdmissionPolicyBindingList",
	}
	return &guard.Cluster{Client: cs, Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists),
		Metadata: metadatafake.NewSimpleMetadataClient(scheme, secrets...), AsAPIServer: as}
}

func install(t *testing.T, c *guard.Cluster) {
	t.Helper()
	if _, err := guard.Install(context.Background(), c, guard.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestGuardCheck(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                     string
		served, guarded, acting  bool
		installed, noImpersonate bool
		want                     Status
		in, fix                  string
	}{
		{name: "not served, nothing guarded", want: Pass, in: "not installed (the policy API is not served)"},
		{name: "not served, a Secret guarded", guarded: true, want: Warn, in: "1 legacy token Secret invalid with a guard day", fix: "guard watch"},
		{name: "served, not installed, nothing guarded", served: true, want: Pass, in: "not installed, and no Secret"},
		{name: "served, not installed, a Secret guarded", served: true, guarded: true, want: Warn, in: "nothing restores", fix: "kubectl bound-token guard install"},
		{name: "installed and acting", served: true, guarded: true, acting: true, installed: true, want: Pass, in: "and acting: kube-apiserver's own last-used patch (dryRun=All, as system:apiserver) on Secret ns/yearly-token came back restored"},
		{name: "installed, not acting", served: true, guarded: true, installed: true, want: Fail, in: "but NOT acting", fix: "MutatingAdmissionPolicy admission plugin"},
		// Doctor never creates a throwaway Secret.
		{name: "installed, nothing to prove it on", served: true, acting: true, installed: true, want: Warn, in: "unproven: no legacy token Secret this tool invalidated", fix: "guard status proves it"},
		{name: "installed, may not impersonate", served: true, guarded: true, acting: true, installed: true, noImpersonate: true, want: Warn, in: "unproven", fix: "guard status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := guardFake(t, tc.served, tc.guarded, tc.acting)
			if tc.installed {
				install(t, c)
			}
			if tc.noImpersonate {
				c.AsAPIServer, c.AsAPIServerErr = nil, nil
			}
			got := guardCheck(ctx, c)
			if got.Name != "guard" || got.Status != tc.want || !strings.Contains(got.Message, tc.in) || !strings.Contains(got.Fix, tc.fix) || (tc.want != Pass && got.Fix == "") {
				t.Fatalf("got %+v\nwant %s with %q, fix %q", got, tc.want, tc.in, tc.fix)
			}
		})
	}
	if got := guardCheck(ctx, nil); got.Status != Skip {
		t.Errorf("no clients: %+v", got)
	}
}
