package guard

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
)

// Cluster is what the guard's commands act through.
type Cluster struct {
	Client   kubernetes.Interface
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	// AsAPIServer is the same connection impersonating kube-apiserver's
	// loopback identity, for the proof (Prove); nil when it cannot be
	// built, and AsAPIServerErr says why.
	AsAPIServer    kubernetes.Interface
	AsAPIServerErr error
}

// NewCluster builds the clients of cfg, sharing one HTTP client.
func NewCluster(cfg *rest.Config) (*Cluster, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	if c.Client, err = kubernetes.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if c.Dynamic, err = dynamic.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	if c.Metadata, err = metadata.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, err
	}
	c.AsAPIServer, c.AsAPIServerErr = AsAPIServer(cfg)
	return c, nil
}

// AsAPIServer is a client of cfg impersonating kube-apiserver's loopback
// identity: user APIServerUser in group APIServerGroup (system:authenticated
// is added by the apiserver, k8s.io/apiserver@v0.37.2
// pkg/endpoints/filters/impersonation/impersonation.go,
// WithImpersonation). The group matters: RBAC grants the user nothing,
// the group everything, as for the real loopback client.
func AsAPIServer(cfg *rest.Config) (kubernetes.Interface, error) {
	if im := cfg.Impersonate; im.UserName != "" || im.UID != "" || len(im.Groups) > 0 || len(im.Extra) > 0 {
		return nil, fmt.Errorf("the connection already impersonates %q: proving the guard needs impersonating %s, which cannot be layered on another impersonation", im.UserName, APIServerUser)
	}
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: APIServerUser, Groups: []string{APIServerGroup}}
	return kubernetes.NewForConfig(c)
}

// DiscoveryVersions are the versions ServedVersion can be asked about,
// newest first; v1alpha1 only tells "served, but too old for the guard".
var DiscoveryVersions = []string{VersionV1, VersionV1beta1, "v1alpha1"}

// ServedVersion is the first of versions (newest first) whose discovery
// lists mutatingadmissionpolicies, "" when none does. It asks one group
// version at a time, so a 1.36+ cluster answers in one small request (the
// aggregated /apis document would list every resource of every group). A
// version that is not served answers 404; a version served without the
// resource (1.34's v1 has ValidatingAdmissionPolicy only) is skipped.
// Served is not enforced: the MutatingAdmissionPolicy admission plugin is
// on by default (k8s.io/kubernetes@v1.37.2
// pkg/kubeapiserver/options/plugins.go, DefaultOffAdmissionPlugins) but
// can be disabled, and no API says so; only Prove can tell.
func ServedVersion(ctx context.Context, d discovery.DiscoveryInterface, versions ...string) (string, error) {
	rd := discovery.ToServerResourcesInterfaceWithContext(d)
	for _, v := range versions {
		gv := Group + "/" + v
		l, err := rd.ServerResourcesForGroupVersionWithContext(ctx, gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("discovery of %s: %w", gv, err)
		}
		for _, r := range l.APIResources {
			if r.Name == PolicyResource(v).Resource {
				return v, nil
			}
		}
	}
	return "", nil
}

// ErrNotServed: no version the guard is written in serves
// MutatingAdmissionPolicy.
var ErrNotServed = errors.New("MutatingAdmissionPolicy is not served at " + Group + "/" + VersionV1 + " or " + VersionV1beta1 +
	": upgrade to 1.36+, or on 1.34/1.35 start kube-apiserver with the MutatingAdmissionPolicy feature gate together with --runtime-config=" + Group + "/" + VersionV1beta1 + "=true")

// ForeignError: an object of the guard's name exists that this tool did
// not write (no ManagedByLabel): it is neither replaced nor deleted.
type ForeignError struct{ Kind, Name string }

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s %s exists and was not written by %s (no label %s=%s): left alone", e.Kind, e.Name, ManagedBy, ManagedByLabel, ManagedBy)
}

// What install does to each object.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	ActionDelete    = "delete"
	ActionAbsent    = "absent"
)

// Plan is what install or uninstall will do, for Confirm.
type Plan struct {
	// Version is the admissionregistration.k8s.io version acted through.
	Version string `json:"version"`
	Policy  string `json:"policy"`
	Binding string `json:"binding"`
}

// Changes says whether the plan changes anything.
func (p Plan) Changes() bool {
	return (p.Policy != ActionUnchanged && p.Policy != ActionAbsent) || (p.Binding != ActionUnchanged && p.Binding != ActionAbsent)
}

// InstallOptions are install's choices.
type InstallOptions struct {
	// Version is the version to write through, "" for the newest served.
	Version string
	// DryRun is kubectl's --dry-run strategy: DryRunServer sends every
	// write with dryRun=All, DryRunClient stops once the plan is known;
	// neither proves anything.
	DryRun cmdutil.DryRunStrategy
	// Confirm is asked once the plan is known, when it changes anything
	// and it is no dry run; nil means yes.
	Confirm func(Plan) (bool, error)
	// Prove is how the new policy is proved to act (Wait: how long to
	// wait for it); a zero Wait still probes once.
	Prove ProveOptions
}

// InstallResult is what install did.
type InstallResult struct {
	Plan
	DryRun bool `json:"dryRun,omitempty"`
	// Proof is nil on a dry run.
	Proof *Proof `json:"proof,omitempty"`
}

// Install writes the policy and its binding (creating or replacing this
// tool's own, never another's) and then probes until the policy acts or
// o.Prove.Wait passes: served is not enforced.
func Install(ctx context.Context, c *Cluster, o InstallOptions) (*InstallResult, error) {
	version, err := pickVersion(ctx, c, o.Version)
	if err != nil {
		return nil, err
	}
	policy, binding, err := Objects(version)
	if err != nil {
		return nil, err
	}
	res := &InstallResult{Plan: Plan{Version: version}, DryRun: o.DryRun != cmdutil.DryRunNone}
	cur, err := readInstalled(ctx, c, version)
	if err != nil {
		return nil, err
	}
	polRes, bindRes, curPol, curBind := cur.polRes, cur.bindRes, cur.policy, cur.binding
	res.Policy, res.Binding = planChange(curPol, func(u *unstructured.Unstructured) bool { return u.GetAnnotations()[AnnotationRevision] == Revision() }),
		planChange(curBind, func(u *unstructured.Unstructured) bool {
			name, _, _ := unstructured.NestedString(u.Object, "spec", "policyName")
			return name == PolicyName && u.GetAnnotations()[AnnotationRevision] == Revision()
		})
	if o.DryRun == cmdutil.DryRunClient {
		return res, nil
	}
	if res.Changes() && o.DryRun == cmdutil.DryRunNone && o.Confirm != nil {
		ok, err := o.Confirm(res.Plan)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, kubeapi.ErrNotConfirmed
		}
	}
	dry := kubeapi.DryRunAll(o.DryRun)
	// The policy first: a binding to a missing policy is ignored, so
	// neither order leaves a half-working guard, but this one never shows
	// a binding without its policy.
	if err := writeObject(ctx, polRes, policy, curPol, res.Policy, dry); err != nil {
		return nil, fmt.Errorf("MutatingAdmissionPolicy %s: %w", PolicyName, err)
	}
	if err := writeObject(ctx, bindRes, binding, curBind, res.Binding, dry); err != nil {
		return nil, fmt.Errorf("MutatingAdmissionPolicyBinding %s (the policy was written): %w", BindingName, err)
	}
	if o.DryRun == cmdutil.DryRunServer {
		return res, nil
	}
	p := Prove(ctx, c, o.Prove)
	res.Proof = &p
	return res, nil
}

// pickVersion is version when served, or the newest served one.
func pickVersion(ctx context.Context, c *Cluster, version string) (string, error) {
	want := Versions
	if version != "" {
		if _, _, err := Objects(version); err != nil {
			return "", err
		}
		want = []string{version}
	}
	got, err := ServedVersion(ctx, c.Client.Discovery(), want...)
	if err != nil {
		return "", err
	}
	if got == "" {
		if version != "" {
			return "", fmt.Errorf("MutatingAdmissionPolicy is not served at %s/%s", Group, version)
		}
		return "", ErrNotServed
	}
	return got, nil
}

// installed is what the cluster holds of the policy and its binding at
// one version: their resources, and this tool's objects (nil: absent).
type installed struct {
	polRes, bindRes dynamic.NamespaceableResourceInterface
	policy, binding *unstructured.Unstructured
}

// readInstalled reads the policy and the binding of this tool at version.
func readInstalled(ctx context.Context, c *Cluster, version string) (*installed, error) {
	in := &installed{polRes: c.Dynamic.Resource(PolicyResource(version)), bindRes: c.Dynamic.Resource(BindingResource(version))}
	var err error
	if in.policy, err = readOwned(ctx, in.polRes, "MutatingAdmissionPolicy", PolicyName); err != nil {
		return nil, err
	}
	if in.binding, err = readOwned(ctx, in.bindRes, "MutatingAdmissionPolicyBinding", BindingName); err != nil {
		return nil, err
	}
	return in, nil
}

// readOwned reads an object of the guard's name: nil when absent, a
// ForeignError when it is not this tool's.
func readOwned(ctx context.Context, r dynamic.NamespaceableResourceInterface, kind, name string) (*unstructured.Unstructured, error) {
	u, err := r.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", kind, name, err)
	}
	if u.GetLabels()[ManagedByLabel] != ManagedBy {
		return u, &ForeignError{Kind: kind, Name: name}
	}
	return u, nil
}

func planChange(cur *unstructured.Unstructured, same func(*unstructured.Unstructured) bool) string {
	switch {
	case cur == nil:
		return ActionCreate
	case same(cur):
		return ActionUnchanged
	}
	return ActionUpdate
}

// writeObject creates or replaces obj as action says; an update carries the
// resourceVersion read, so a change made meanwhile fails instead of being
// overwritten.
func writeObject(ctx context.Context, r dynamic.NamespaceableResourceInterface, obj runtime.Object, cur *unstructured.Unstructured, action string, dryRun []string) error {
	if action == ActionUnchanged {
		return nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	if action == ActionCreate {
		_, err = r.Create(ctx, u, metav1.CreateOptions{DryRun: dryRun, FieldManager: ManagedBy})
		return err
	}
	u.SetResourceVersion(cur.GetResourceVersion())
	_, err = r.Update(ctx, u, metav1.UpdateOptions{DryRun: dryRun, FieldManager: ManagedBy})
	return err
}

// UninstallOptions are uninstall's choices.
type UninstallOptions struct {
	// DryRun is kubectl's --dry-run strategy: DryRunServer sends the
	// deletes with dryRun=All, DryRunClient stops once the plan is known.
	DryRun cmdutil.DryRunStrategy
	// Confirm is asked when something is to be deleted and it is no dry
	// run; nil means yes.
	Confirm func(Plan) (bool, error)
}

// UninstallResult is what uninstall did; Guarded counts the Secrets left
// invalid with a guard day and no guard (nil when they cannot be listed).
type UninstallResult struct {
	Plan
	DryRun  bool `json:"dryRun,omitempty"`
	Guarded *int `json:"guarded,omitempty"`
}

// Uninstall deletes this tool's binding, then its policy. Nothing served
// or nothing installed is not an error: there is nothing to delete.
func Uninstall(ctx context.Context, c *Cluster, o UninstallOptions) (*UninstallResult, error) {
	res := &UninstallResult{Plan: Plan{Policy: ActionAbsent, Binding: ActionAbsent}, DryRun: o.DryRun != cmdutil.DryRunNone}
	if counts, err := Count(ctx, c.Metadata); err == nil {
		res.Guarded = &counts.Guarded
	}
	version, err := ServedVersion(ctx, c.Client.Discovery(), Versions...)
	if err != nil || version == "" {
		return res, err
	}
	res.Version = version
	cur, err := readInstalled(ctx, c, version)
	if err != nil {
		return nil, err
	}
	polRes, bindRes, curPol, curBind := cur.polRes, cur.bindRes, cur.policy, cur.binding
	if curPol != nil {
		res.Policy = ActionDelete
	}
	if curBind != nil {
		res.Binding = ActionDelete
	}
	if !res.Changes() || o.DryRun == cmdutil.DryRunClient {
		return res, nil
	}
	if o.DryRun == cmdutil.DryRunNone && o.Confirm != nil {
		ok, err := o.Confirm(res.Plan)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, kubeapi.ErrNotConfirmed
		}
	}
	del := func(r dynamic.NamespaceableResourceInterface, u *unstructured.Unstructured) error {
		if u == nil {
			return nil
		}
		opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptrTo(u.GetUID())}, DryRun: kubeapi.DryRunAll(o.DryRun)}
		err := r.Delete(ctx, u.GetName(), opts)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err := del(bindRes, curBind); err != nil {
		return nil, fmt.Errorf("delete MutatingAdmissionPolicyBinding %s: %w", BindingName, err)
	}
	if err := del(polRes, curPol); err != nil {
		return nil, fmt.Errorf("delete MutatingAdmissionPolicy %s (the binding is deleted: the policy no longer acts): %w", PolicyName, err)
	}
	return res, nil
}

func ptrTo[T any](v T) *T { return &v }

// StatusOptions are status's choices.
type StatusOptions struct {
	Prove ProveOptions
}

// StatusResult is what status found.
type StatusResult struct {
	// ServedVersion is the newest version serving the policy that the
	// guard can be written in, "" when none.
	ServedVersion string `json:"servedVersion"`
	// Installed: this tool's policy and its binding both exist.
	Installed bool   `json:"installed"`
	Policy    string `json:"policy"`  // present, absent, foreign
	Binding   string `json:"binding"` // present, absent, foreign
	// Revision is the installed policy's; Current says it is this
	// build's.
	Revision string `json:"revision,omitempty"`
	Current  bool   `json:"current"`
	// Proof is nil when nothing is installed.
	Proof *Proof `json:"proof,omitempty"`
	// Counts is nil when the Secrets cannot be listed (CountError).
	Counts     *Counts `json:"counts,omitempty"`
	CountError string  `json:"countError,omitempty"`
}

// What status found of an object.
const (
	ObjectPresent = "present"
	ObjectForeign = "foreign"
	ObjectAbsent  = ActionAbsent
)

// Status reads what is installed, proves whether it acts, and counts the
// guarded and restored Secrets.
func Status(ctx context.Context, c *Cluster, o StatusOptions) (*StatusResult, error) {
	res := &StatusResult{Policy: ObjectAbsent, Binding: ObjectAbsent}
	if counts, err := Count(ctx, c.Metadata); err != nil {
		res.CountError = err.Error()
	} else {
		res.Counts = &counts
	}
	version, err := ServedVersion(ctx, c.Client.Discovery(), Versions...)
	if err != nil {
		return nil, err
	}
	res.ServedVersion = version
	if version == "" {
		return res, nil
	}
	state := func(r dynamic.NamespaceableResourceInterface, kind, name string) (string, *unstructured.Unstructured, error) {
		u, err := readOwned(ctx, r, kind, name)
		var fe *ForeignError
		switch {
		case errors.As(err, &fe):
			return ObjectForeign, u, nil
		case err != nil:
			return "", nil, err
		case u == nil:
			return ObjectAbsent, nil, nil
		}
		return ObjectPresent, u, nil
	}
	var pol, bind *unstructured.Unstructured
	if res.Policy, pol, err = state(c.Dynamic.Resource(PolicyResource(version)), "MutatingAdmissionPolicy", PolicyName); err != nil {
		return nil, err
	}
	if res.Binding, bind, err = state(c.Dynamic.Resource(BindingResource(version)), "MutatingAdmissionPolicyBinding", BindingName); err != nil {
		return nil, err
	}
	res.Installed = res.Policy == ObjectPresent && res.Binding == ObjectPresent
	if pol != nil {
		res.Revision = pol.GetAnnotations()[AnnotationRevision]
	}
	if res.Installed {
		name, _, _ := unstructured.NestedString(bind.Object, "spec", "policyName")
		res.Current = res.Revision == Revision() && name == PolicyName
		p := Prove(ctx, c, o.Prove)
		res.Proof = &p
	}
	return res, nil
}

// Describe is a one-line account of a status, for doctor and the status
// table's first line.
func (r *StatusResult) Describe() string {
	switch {
	case r.ServedVersion == "":
		return "not installed: " + ErrNotServed.Error()
	case r.Policy == ObjectForeign || r.Binding == ObjectForeign:
		return fmt.Sprintf("not installed: an object named %s exists that %s did not write", PolicyName, ManagedBy)
	case !r.Installed:
		return fmt.Sprintf("not installed (%s/%s served; policy %s, binding %s)", Group, r.ServedVersion, r.Policy, r.Binding)
	}
	s := fmt.Sprintf("installed (%s/%s, MutatingAdmissionPolicy and binding %s", Group, r.ServedVersion, PolicyName)
	if !r.Current {
		s += ", written by another version of " + ManagedBy
	}
	return s + ")"
}

// Counts are the legacy token Secrets that carry a guard day.
type Counts struct {
	// Guarded are invalid now (LabelInvalidSince and LabelGuardUntil).
	Guarded int `json:"guarded"`
	// Restored carry AnnotationRestoredOnUse; RestoredBy splits them by
	// AnnotationRestoredBy.
	Restored   int            `json:"restored"`
	RestoredBy map[string]int `json:"restoredBy,omitempty"`
}

// Count lists the legacy token Secrets with a guard day, for their
// metadata only (no token reaches the plugin), in every namespace.
func Count(ctx context.Context, md metadata.Interface) (Counts, error) {
	out := Counts{RestoredBy: map[string]int{}}
	err := eachGuardedMeta(ctx, md, legacy.LabelGuardUntil, func(m metav1.Object) bool {
		if m.GetLabels()[legacy.LabelInvalidSince] != "" {
			out.Guarded++
		}
		if _, ok := m.GetAnnotations()[legacy.AnnotationRestoredOnUse]; ok {
			out.Restored++
			out.RestoredBy[m.GetAnnotations()[legacy.AnnotationRestoredBy]]++
		}
		return true
	})
	return out, err
}

// eachGuardedMeta lists, page by page, the metadata of the legacy token
// Secrets matching selector in every namespace, until fn says stop.
func eachGuardedMeta(ctx context.Context, md metadata.Interface, selector string, fn func(metav1.Object) bool) error {
	if md == nil {
		return errors.New("no metadata client to list the legacy token Secrets with")
	}
	lo := metav1.ListOptions{LabelSelector: selector, FieldSelector: SecretTypeField, Limit: 500}
	for {
		l, err := md.Resource(probeSecretsResource).List(ctx, lo)
		if err != nil {
			return fmt.Errorf("list legacy token Secrets (%s): %w", selector, err)
		}
		for i := range l.Items {
			if !fn(&l.Items[i]) {
				return nil
			}
		}
		if lo.Continue = l.Continue; lo.Continue == "" {
			return nil
		}
	}
}
