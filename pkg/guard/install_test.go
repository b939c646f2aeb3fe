package guard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

var ctx = context.Background()

// fakeCluster serves version (none when "") and holds objs (policies and
// bindings as unstructured, Secrets as metadata).
func fakeCluster(t *testing.T, version string, objs ...runtime.Object) (*Cluster, *fake.Clientset, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	d := cs.Discovery().(*fakediscovery.FakeDiscovery)
	// v1 serves ValidatingAdmissionPolicy on every release here; the
	// guard's version serves the policy and its binding too.
	v1 := &metav1.APIResourceList{GroupVersion: Group + "/v1", APIResources: []metav1.APIResource{{Name: "validatingadmissionpolicies"}}}
	d.Resources = []*metav1.APIResourceList{v1}
	switch version {
	case "":
	case VersionV1:
		v1.APIResources = append(v1.APIResources, metav1.APIResource{Name: PolicyResource(version).Resource}, metav1.APIResource{Name: BindingResource(version).Resource})
	default:
		d.Resources = append(d.Resources, &metav1.APIResourceList{GroupVersion: Group + "/" + version, APIResources: []metav1.APIResource{
			{Name: PolicyResource(version).Resource}, {Name: BindingResource(version).Resource}}})
	}
	scheme := runtime.NewScheme()
	_ = metav1.AddMetaToScheme(scheme)
	lists := map[schema.GroupVersionResource]string{}
	for _, v := range Versions {
		lists[PolicyResource(v)] = "MutatingAdmissionPolicyList"
		lists[BindingResource(v)] = "MutatingAdmissionPolicyBindingList"
	}
	var dynObjs, mdObjs []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*metav1.PartialObjectMetadata); ok {
			mdObjs = append(mdObjs, o)
		} else {
			dynObjs = append(dynObjs, o)
		}
	}
	as := fake.NewClientset()
	return &Cluster{
		Client:      cs,
		Dynamic:     dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists, dynObjs...),
		Metadata:    metadatafake.NewSimpleMetadataClient(scheme, mdObjs...),
		AsAPIServer: as,
	}, cs, as
}

// allowImpersonation answers every SelfSubjectAccessReview with allowed.
func allowImpersonation(cs *fake.Clientset, allowed bool) {
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		r := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = allowed
		return true, r, nil
	})
}

// apiserverAnswers makes the impersonated client answer a patch with the
// Secret as the admission chain would leave it: restored when acting.
func apiserverAnswers(as *fake.Clientset, acting bool, patches *int) {
	as.PrependReactor("patch", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		*patches++
		p := a.(clienttesting.PatchAction)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: p.GetName(), Namespace: p.GetNamespace(),
			Labels: map[string]string{legacy.LabelInvalidSince: "2026-12-01", legacy.LabelLastUsed: "2026-12-07"}, Annotations: map[string]string{}}}
		if !strings.Contains(string(p.GetPatch()), `"labels":{"kubernetes.io/legacy-token-last-used":"`) {
			return true, nil, errors.New("not kube-apiserver's patch: " + string(p.GetPatch()))
		}
		if acting {
			delete(s.Labels, legacy.LabelInvalidSince)
			// the day the patch wrote
			day := strings.Split(strings.Split(string(p.GetPatch()), `last-used":"`)[1], `"`)[0]
			s.Annotations[legacy.AnnotationRestoredOnUse] = day
			s.Annotations[legacy.AnnotationRestoredBy] = legacy.RestoredByPolicy
		}
		return true, s, nil
	})
}

func guardedMeta(ns, name string, labels, ann map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: "uid-" + "x", Labels: labels, Annotations: ann},
	}
}

func TestInstallCreatesThenUnchanged(t *testing.T) {
	c, _, as := fakeCluster(t, VersionV1beta1)
	allowImpersonation(c.Client.(*fake.Clientset), true)
	var patches int
	apiserverAnswers(as, true, &patches)
	asked := 0
	o := InstallOptions{Confirm: func(p Plan) (bool, error) { asked++; return true, nil }, Prove: ProveOptions{Throwaway: true, Namespace: "default"}}
	res, err := Install(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != VersionV1beta1 || res.Policy != ActionCreate || res.Binding != ActionCreate || asked != 1 {
		t.Errorf("first install: %+v, asked %d", res, asked)
	}
	if res.Proof == nil || res.Proof.State != Acting || !res.Proof.Throwaway || patches != 1 {
		t.Errorf("proof %+v after %d patches", res.Proof, patches)
	}
	// The throwaway was created and deleted.
	var created, deleted bool
	for _, a := range c.Client.(*fake.Clientset).Actions() {
		created = created || (a.GetVerb() == "create" && a.GetResource().Resource == "secrets")
		deleted = deleted || (a.GetVerb() == "delete" && a.GetResource().Resource == "secrets")
	}
	if !created || !deleted {
		t.Errorf("throwaway created %v, deleted %v", created, deleted)
	}
	u, err := c.Dynamic.Resource(PolicyResource(VersionV1beta1)).Get(ctx, PolicyName, metav1.GetOptions{})
	if err != nil || u.GetAPIVersion() != Group+"/v1beta1" || u.GetLabels()[ManagedByLabel] != ManagedBy {
		t.Fatalf("stored policy: %v %v", u, err)
	}

	res, err = Install(ctx, c, o)
	if err != nil || res.Policy != ActionUnchanged || res.Binding != ActionUnchanged || asked != 1 {
		t.Errorf("second install: %+v %v, asked %d (nothing to change: no question)", res, err, asked)
	}

	// An older revision is updated.
	u.SetAnnotations(map[string]string{AnnotationRevision: "older"})
	if _, err := c.Dynamic.Resource(PolicyResource(VersionV1beta1)).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = Install(ctx, c, o)
	if err != nil || res.Policy != ActionUpdate || res.Binding != ActionUnchanged {
		t.Errorf("install over an older revision: %+v %v", res, err)
	}
}

func TestInstallRefusals(t *testing.T) {
	t.Run("not served", func(t *testing.T) {
		c, _, _ := fakeCluster(t, "")
		if _, err := Install(ctx, c, InstallOptions{}); !errors.Is(err, ErrNotServed) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("v1 asked, v1beta1 served", func(t *testing.T) {
		c, _, _ := fakeCluster(t, VersionV1beta1)
		if _, err := Install(ctx, c, InstallOptions{Version: VersionV1}); err == nil || !strings.Contains(err.Error(), "not served at admissionregistration.k8s.io/v1") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not confirmed", func(t *testing.T) {
		c, _, _ := fakeCluster(t, VersionV1)
		_, err := Install(ctx, c, InstallOptions{Confirm: func(Plan) (bool, error) { return false, nil }})
		if !errors.Is(err, kubeapi.ErrNotConfirmed) {
			t.Fatalf("err %v", err)
		}
		if l, _ := c.Dynamic.Resource(PolicyResource(VersionV1)).List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
			t.Fatal("created without confirmation")
		}
	})
	t.Run("someone else's policy of that name", func(t *testing.T) {
		other := &unstructured.Unstructured{}
		other.SetAPIVersion(Group + "/v1")
		other.SetKind("MutatingAdmissionPolicy")
		other.SetName(PolicyName)
		c, _, _ := fakeCluster(t, VersionV1, other)
		_, err := Install(ctx, c, InstallOptions{})
		var fe *ForeignError
		if !errors.As(err, &fe) {
			t.Fatalf("err %v", err)
		}
		if _, err := Uninstall(ctx, c, UninstallOptions{}); !errors.As(err, &fe) {
			t.Fatalf("uninstall deleted someone else's policy: %v", err)
		}
	})
	t.Run("server dry run proves nothing and asks nothing", func(t *testing.T) {
		c, _, _ := fakeCluster(t, VersionV1)
		res, err := Install(ctx, c, InstallOptions{DryRun: cmdutil.DryRunServer, Confirm: func(Plan) (bool, error) { t.Fatal("asked"); return false, nil }})
		if err != nil || res.Proof != nil || !res.DryRun {
			t.Fatalf("%+v %v", res, err)
		}
	})
}

func TestProve(t *testing.T) {
	marked := func(edit func(l, a map[string]string)) *metav1.PartialObjectMetadata {
		l := map[string]string{legacy.LabelInvalidSince: "2026-12-01", legacy.LabelGuardUntil: "2027-03-01"}
		a := map[string]string{legacy.AnnotationInvalidatedFor: legacy.InvalidatedForCleanUp, legacy.AnnotationLastUsedBefore: legacy.LastUsedNone}
		if edit != nil {
			edit(l, a)
		}
		return guardedMeta("ns", "s", l, a)
	}
	t.Run("on a Secret this tool marked: acting", func(t *testing.T) {
		c, cs, as := fakeCluster(t, VersionV1, marked(nil))
		allowImpersonation(cs, true)
		var n int
		apiserverAnswers(as, true, &n)
		p := Prove(ctx, c, ProveOptions{})
		if p.State != Acting || p.Secret != "ns/s" || p.Throwaway || p.LastUsed != "2027-03-01" {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("the guard day equals last-used now: the day before", func(t *testing.T) {
		c, cs, as := fakeCluster(t, VersionV1, marked(func(l, a map[string]string) { l[legacy.LabelLastUsed] = "2027-03-01" }))
		allowImpersonation(cs, true)
		var n int
		apiserverAnswers(as, true, &n)
		if p := Prove(ctx, c, ProveOptions{}); p.State != Acting || p.LastUsed != "2027-02-28" {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("not acting, waits then says so", func(t *testing.T) {
		c, cs, as := fakeCluster(t, VersionV1, marked(nil))
		allowImpersonation(cs, true)
		var n int
		apiserverAnswers(as, false, &n)
		p := Prove(ctx, c, ProveOptions{Wait: 300 * time.Millisecond, Interval: 100 * time.Millisecond})
		if p.State != NotActing || n < 2 || !strings.Contains(p.Reason, "came back still invalid") {
			t.Fatalf("%+v after %d patches", p, n)
		}
	})
	t.Run("no right to impersonate: unproven", func(t *testing.T) {
		c, cs, as := fakeCluster(t, VersionV1, marked(nil))
		allowImpersonation(cs, false)
		var n int
		apiserverAnswers(as, true, &n)
		p := Prove(ctx, c, ProveOptions{Throwaway: true})
		if p.State != Unproven || n != 0 || !strings.Contains(p.Reason, "you may not impersonate users system:apiserver") {
			t.Fatalf("%+v after %d patches", p, n)
		}
	})
	t.Run("already impersonating: unproven", func(t *testing.T) {
		c, _, _ := fakeCluster(t, VersionV1)
		c.AsAPIServer, c.AsAPIServerErr = nil, errors.New("the connection already impersonates \"alice\"")
		if p := Prove(ctx, c, ProveOptions{}); p.State != Unproven || !strings.Contains(p.Reason, "alice") {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("nothing marked, no throwaway: unproven", func(t *testing.T) {
		// A revocation and a Secret restored before cannot carry it.
		c, cs, as := fakeCluster(t, VersionV1,
			marked(func(l, a map[string]string) { a[legacy.AnnotationInvalidatedFor] = legacy.InvalidatedForRevocation }))
		allowImpersonation(cs, true)
		var n int
		apiserverAnswers(as, true, &n)
		p := Prove(ctx, c, ProveOptions{})
		if p.State != Unproven || n != 0 || !strings.Contains(p.Reason, "no legacy token Secret this tool invalidated") {
			t.Fatalf("%+v", p)
		}
	})
}

func TestStatusAndCounts(t *testing.T) {
	sec := func(name string, l, a map[string]string) *metav1.PartialObjectMetadata {
		return guardedMeta("ns", name, l, a)
	}
	c, cs, as := fakeCluster(t, VersionV1,
		sec("guarded", map[string]string{legacy.LabelInvalidSince: "2026-12-01", legacy.LabelGuardUntil: "2027-03-01"}, nil),
		sec("restored", map[string]string{legacy.LabelGuardUntil: "2027-03-01"}, map[string]string{legacy.AnnotationRestoredOnUse: "2026-12-02", legacy.AnnotationRestoredBy: legacy.RestoredByPolicy}),
		sec("watched", map[string]string{legacy.LabelGuardUntil: "2027-03-01"}, map[string]string{legacy.AnnotationRestoredOnUse: "2026-12-03", legacy.AnnotationRestoredBy: legacy.RestoredByWatch}),
		sec("cleaner", map[string]string{legacy.LabelInvalidSince: "2026-12-01"}, nil),
	)
	allowImpersonation(cs, true)
	var n int
	apiserverAnswers(as, true, &n)
	st, err := Status(ctx, c, StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Installed || st.Proof != nil || st.ServedVersion != VersionV1 || !strings.HasPrefix(st.Describe(), "not installed") {
		t.Errorf("before install: %+v", st)
	}
	if st.Counts == nil || st.Counts.Guarded != 1 || st.Counts.Restored != 2 || st.Counts.RestoredBy[legacy.RestoredByWatch] != 1 {
		t.Errorf("counts %+v", st.Counts)
	}
	if _, err := Install(ctx, c, InstallOptions{Prove: ProveOptions{Throwaway: true, Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	st, err = Status(ctx, c, StatusOptions{Prove: ProveOptions{Throwaway: true, Namespace: "default"}})
	if err != nil || !st.Installed || !st.Current || st.Proof == nil || st.Proof.State != Acting || !st.Proof.Throwaway || !strings.HasPrefix(st.Describe(), "installed (") {
		t.Errorf("after install: %+v %v", st, err)
	}
	// Without a throwaway, and no Secret this tool marked: unproven.
	if st, _ := Status(ctx, c, StatusOptions{}); st.Proof == nil || st.Proof.State != Unproven {
		t.Errorf("no throwaway: %+v", st.Proof)
	}
	res, err := Uninstall(ctx, c, UninstallOptions{})
	if err != nil || res.Policy != ActionDelete || res.Binding != ActionDelete || res.Guarded == nil || *res.Guarded != 1 {
		t.Errorf("uninstall: %+v %v", res, err)
	}
	if res, err := Uninstall(ctx, c, UninstallOptions{}); err != nil || res.Changes() {
		t.Errorf("second uninstall: %+v %v", res, err)
	}
}
