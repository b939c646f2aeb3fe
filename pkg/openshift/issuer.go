package openshift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"
	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// ErrNotHTTPS: the issuer is an http URL, which ValidateIssuer accepts only
// when allowed.
var ErrNotHTTPS = errors.New("not https: OpenShift then disables issuer discovery")

// ValidateIssuer checks a new spec.serviceAccountIssuer. The API does not
// validate it, so a typo would roll out to every node. A non-https issuer is
// refused unless allowed (the error wraps ErrNotHTTPS), because OpenShift
// then turns off issuer discovery.
func ValidateIssuer(issuer string, allowNonHTTPS bool) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("issuer %q is not a URL like https://issuer.example.com/cluster", issuer)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q must not have a query, fragment or user info", issuer)
	}
	if u.Scheme != "https" && !allowNonHTTPS {
		return fmt.Errorf("issuer %q is %w", issuer, ErrNotHTTPS)
	}
	return nil
}

// IssuerPlan is a read of the cluster before changing the issuer.
type IssuerPlan struct {
	// Current is spec.serviceAccountIssuer now ("" = DefaultIssuer).
	Current string
	// New is the value to set ("" removes it, back to the default).
	New string
	// Revision is latestAvailableRevision before the change.
	Revision int32
	// Trusted is status.serviceAccountIssuers before the change.
	Trusted        []ServiceAccountIssuer
	Authentication *unstructured.Unstructured
}

// get reads one cluster-scoped singleton, repeated on transient errors.
func get(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource) (*unstructured.Unstructured, error) {
	return retry.Value(ctx, retry.Default, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return dyn.Resource(gvr).Get(ctx, ClusterName, metav1.GetOptions{})
	})
}

// Plan reads both objects and refuses a change that cannot work. A change
// during a rollout is refused unless duringRollout: a rollback must be
// possible while a failed rollout is still "in progress".
func Plan(ctx context.Context, dyn dynamic.Interface, newIssuer string, duringRollout bool) (*IssuerPlan, error) {
	auth, err := get(ctx, dyn, AuthenticationGVR)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, ErrNotOpenShift
		}
		return nil, fmt.Errorf("read authentications.config.openshift.io/%s: %w", ClusterName, err)
	}
	kas, err := get(ctx, dyn, KubeAPIServerGVR)
	if err != nil {
		return nil, fmt.Errorf("read kubeapiservers.operator.openshift.io/%s: %w", ClusterName, classify(err))
	}
	st, err := StatusOf(kas)
	if err != nil {
		return nil, err
	}
	p := &IssuerPlan{Current: IssuerOf(auth), New: newIssuer, Revision: st.LatestAvailableRevision, Trusted: st.ServiceAccountIssuers, Authentication: auth}
	if EffectiveIssuer(p.Current) == EffectiveIssuer(p.New) {
		return nil, fmt.Errorf("the service-account issuer already is %s: nothing to change", EffectiveIssuer(p.New))
	}
	if len(p.Trusted) >= MaxTrustedIssuers {
		oldest := ""
		for _, t := range p.Trusted {
			if _, ok := t.Expires(); ok && (oldest == "" || t.ExpirationTime < oldest) {
				oldest = t.ExpirationTime
			}
		}
		return nil, fmt.Errorf("%d service-account issuers are already trusted, the operator's limit: another change would drop one that tokens may still use; retry after the oldest expires (%s)", len(p.Trusted), oldest)
	}
	if c := st.Condition(CondNodeInstallerProgressing); c != nil && c.Status == "True" && !duringRollout {
		return nil, fmt.Errorf("a kube-apiserver rollout is in progress (%s): wait for it first with `kubectl bound-token wait`", text.OneLine(c.Message, 0))
	}
	return p, nil
}

// Describe says what Apply will do, for the user to confirm.
func (p *IssuerPlan) Describe() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "current issuer: %s\n", EffectiveIssuer(p.Current))
	fmt.Fprintf(&b, "new issuer:     %s\n", EffectiveIssuer(p.New))
	fmt.Fprintf(&b, "The kube-apiserver operator will roll out revision %d+ to every control-plane node.\n", p.Revision)
	fmt.Fprintf(&b, "Tokens from the current issuer stay valid while it is trusted (24h); a second rollout follows when it is pruned.\n")
	fmt.Fprintf(&b, "Workloads keep their old tokens until restarted.\n")
	return b.String()
}

// WriteBackup stores the Authentication object (without managedFields) as
// YAML in a 0600 file, never over an existing one (the error then wraps
// fileutil.ErrExists), and reads it back to verify it before anything
// changes.
func (p *IssuerPlan) WriteBackup(path string) error {
	obj := p.Authentication.DeepCopy()
	obj.SetManagedFields(nil)
	b, err := yaml.Marshal(obj.Object)
	if err != nil {
		return err
	}
	if err := fileutil.WriteSecretFile(path, b, false); err != nil {
		if errors.Is(err, fileutil.ErrExists) {
			return fmt.Errorf("backup file %s already exists and is never replaced: %w", path, fileutil.ErrExists)
		}
		return fmt.Errorf("backup: %w", err)
	}
	back, err := ReadBackup(path)
	if err != nil {
		return fmt.Errorf("backup %s does not read back: %w", path, err)
	}
	if IssuerOf(back) != p.Current || back.GetResourceVersion() != p.Authentication.GetResourceVersion() {
		return fmt.Errorf("backup %s does not read back as written", path)
	}
	return nil
}

// ReadBackup reads a backup written by WriteBackup.
func ReadBackup(path string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not YAML: %w", path, err)
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetAPIVersion() != "config.openshift.io/v1" || u.GetKind() != "Authentication" || u.GetName() != ClusterName {
		return nil, fmt.Errorf("%s is not a backup of authentications.config.openshift.io/%s (apiVersion %q, kind %q, name %q)", path, ClusterName, u.GetAPIVersion(), u.GetKind(), u.GetName())
	}
	return u, nil
}

// Apply patches spec.serviceAccountIssuer, only if the object is unchanged
// since Plan read it (resourceVersion precondition).
func (p *IssuerPlan) Apply(ctx context.Context, dyn dynamic.Interface) error {
	return p.apply(ctx, dyn, cmdutil.DryRunNone)
}

// apply sends Apply's patch; on DryRunServer the apiserver checks it
// (admission included) and persists nothing (dryRun=All, as kubectl's
// --dry-run=server sends it). A client dry run never gets here: it sends
// nothing.
func (p *IssuerPlan) apply(ctx context.Context, dyn dynamic.Interface, dryRun cmdutil.DryRunStrategy) error {
	opts := metav1.PatchOptions{DryRun: kubeapi.DryRunAll(dryRun)}
	var iss any = p.New
	if p.New == "" {
		iss = nil // back to the default: remove the field
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": p.Authentication.GetResourceVersion()},
		"spec":     map[string]any{"serviceAccountIssuer": iss},
	})
	if err != nil {
		return err
	}
	// The resourceVersion makes a repeat safe: if an earlier attempt went
	// through and its answer was lost, the repeat fails with a conflict,
	// and the object then already holds the new issuer. When the retries
	// run out instead, that attempt may have gone through all the same.
	n, err := retry.Do(ctx, retry.Default, func(ctx context.Context) error {
		_, err := dyn.Resource(AuthenticationGVR).Patch(ctx, ClusterName, types.MergePatchType, patch, opts)
		return err
	})
	lookFailed := false
	if n > 1 && dryRun != cmdutil.DryRunServer && (apierrors.IsConflict(err) || retry.MayHaveApplied(n, err)) {
		cur, gerr := get(ctx, dyn, AuthenticationGVR)
		if gerr == nil && IssuerOf(cur) == p.New {
			return nil
		}
		lookFailed = gerr != nil
	}
	switch {
	case err == nil:
		return nil
	case lookFailed:
		return fmt.Errorf("patch authentications.config.openshift.io/%s: %w; an earlier try may have gone through: "+
			"check spec.serviceAccountIssuer (kubectl bound-token doctor) before running again", ClusterName, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("authentications.config.openshift.io/%s changed since it was read: nothing was changed; run the command again", ClusterName)
	}
	return fmt.Errorf("patch authentications.config.openshift.io/%s: %w", ClusterName, err)
}

// TrustWindow reads status.serviceAccountIssuers after the rollout and says
// until when the previous issuer is trusted.
func TrustWindow(ctx context.Context, dyn dynamic.Interface, previous string) (string, error) {
	kas, err := get(ctx, dyn, KubeAPIServerGVR)
	if err != nil {
		return "", classify(err)
	}
	st, err := StatusOf(kas)
	if err != nil {
		return "", err
	}
	prev := EffectiveIssuer(previous)
	for _, i := range st.ServiceAccountIssuers {
		if i.Name != prev {
			continue
		}
		if t, ok := i.Expires(); ok {
			return fmt.Sprintf("previous issuer %s trusted until %s; a second kube-apiserver rollout follows when it is pruned (follow it with `kubectl bound-token wait`)",
				prev, t.UTC().Format("2006-01-02T15:04Z")), nil
		}
	}
	return "", errors.New("the operator does not list the previous issuer " + prev + " as trusted: tokens it signed are rejected now; restart workloads that use them")
}

// DefaultBackupPath names a backup file after the time it was made.
func DefaultBackupPath(now time.Time) string {
	return "authentication-cluster-" + now.UTC().Format("20060102T150405Z") + ".yaml"
}
