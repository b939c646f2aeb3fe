package switcher

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// FindOptions select the workloads to look at.
type FindOptions struct {
	// Namespace "" means every namespace.
	Namespace string
	// Refs are TYPE/NAME arguments (one namespace).
	Refs     []string
	Selector string
	// Warn, when set, is told of kinds of other APIs that are served but
	// may not be listed: their workloads are not looked at.
	Warn func(string)
}

// KindNames are the TYPE words switch accepts, for completion.
func KindNames() []string {
	var out []string
	for _, k := range workload.Kinds() {
		if k.Rewritable() {
			out = append(out, k.Name())
		}
	}
	return out
}

// ParseRef reads TYPE/NAME, TYPE as kubectl accepts it.
func ParseRef(s string) (*workload.Kind, string, error) {
	t, n, ok := strings.Cut(s, "/")
	k := workload.Parse(t)
	if ok && n != "" && k != nil && !k.Rewritable() {
		return nil, "", fmt.Errorf("%q: a %s's pod spec is not a template switch can rewrite; switch the workload that creates it (TYPE one of %s)", s, k.Name(), strings.Join(KindNames(), ", "))
	}
	if !ok || n == "" || k == nil {
		return nil, "", fmt.Errorf("%q: want TYPE/NAME with TYPE one of %s", s, strings.Join(KindNames(), ", "))
	}
	return k, n, nil
}

// GetWorkload reads one workload of kind k.
func GetWorkload(ctx context.Context, c workload.Clients, k *workload.Kind, ns, name string) (*Workload, error) {
	obj, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (workload.Object, error) {
		return k.Get(ctx, c, ns, name)
	})
	if err != nil {
		return nil, err
	}
	return NewWorkload(obj)
}

// Tokens lists the legacy token Secrets of ns ("" all), by namespace and
// name.
func Tokens(ctx context.Context, c kubernetes.Interface, ns string) (map[string]map[string]*corev1.Secret, error) {
	out := map[string]map[string]*corev1.Secret{}
	lo := metav1.ListOptions{Limit: 500, FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()}
	err := kubeapi.EachPage(ctx, lo, c.CoreV1().Secrets(ns).List, func(l *corev1.SecretList) error {
		for i := range l.Items {
			s := &l.Items[i]
			if out[s.Namespace] == nil {
				out[s.Namespace] = map[string]*corev1.Secret{}
			}
			out[s.Namespace][s.Name] = s
		}
		return nil
	})
	if err != nil {
		return nil, kubeapi.DescribeAPIError(err, "list", "secrets", ns)
	}
	return out, nil
}

// Find plans the switch of every selected workload that reads a legacy
// token Secret. Pods and Jobs run by a workload, and ReplicaSets of a
// Deployment, are not listed: their owner is.
func Find(ctx context.Context, c workload.Clients, fo FindOptions, o Options) ([]*Plan, error) {
	tokens, err := Tokens(ctx, c.Kube, fo.Namespace)
	if err != nil {
		return nil, err
	}
	reads := func(w *Workload) bool {
		found := false
		t := w.Template()
		if t == nil {
			return false
		}
		workload.VisitSecretNames(&t.Spec, func(name, _ string) {
			if tokens[w.Object.GetNamespace()][name] != nil {
				found = true
			}
		})
		return found
	}
	var ws []*Workload
	if len(fo.Refs) > 0 {
		for _, r := range fo.Refs {
			k, name, err := ParseRef(r)
			if err != nil {
				return nil, err
			}
			w, err := GetWorkload(ctx, c, k, fo.Namespace, name)
			if err != nil {
				return nil, kubeapi.DescribeAPIError(err, "get", k.ResourceGroup(), fo.Namespace)
			}
			ws = append(ws, w)
		}
	} else if len(tokens) > 0 {
		if ws, err = list(ctx, c, fo); err != nil {
			return nil, err
		}
	}
	runBy, err := runners(ctx, c, fo, ws)
	if err != nil {
		return nil, err
	}
	var plans []*Plan
	for _, w := range ws {
		if !reads(w) {
			continue
		}
		p := MakePlan(w, tokens[w.Object.GetNamespace()], o)
		for _, r := range runBy[w.Object.GetNamespace()+"/"+w.Type.GroupKind().String()+"/"+w.Object.GetName()] {
			p.Warnings = append(p.Warnings, r+" runs this template too (spec.workloadRef): its pods move when it rolls out, which this run does not follow")
		}
		plans = append(plans, p)
	}
	sortPlans(plans)
	return plans, nil
}

func sortPlans(plans []*Plan) {
	order := map[*workload.Kind]int{}
	for i, k := range workload.Kinds() {
		order[k] = i
	}
	sort.SliceStable(plans, func(i, j int) bool {
		a, b := plans[i], plans[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Workload.Type != b.Workload.Type {
			return order[a.Workload.Type] < order[b.Workload.Type]
		}
		return a.Name < b.Name
	})
}

// list runs one LIST per kind of the workload table, at once. Objects
// that follow their controller's template (a Deployment's ReplicaSets, a
// CronJob's Jobs, a controller's pods) are left out: their owner is listed.
// A kind of another API that the cluster does not serve, or that cannot be
// read without a dynamic client, has no objects here; one the user may
// not list is told to fo.Warn and skipped: switch is not what keeps a
// Secret read (migrate's readers are), and a user may switch the kinds
// they may change.
func list(ctx context.Context, c workload.Clients, fo FindOptions) ([]*Workload, error) {
	ns := fo.Namespace
	lo := metav1.ListOptions{Limit: 500, LabelSelector: fo.Selector}
	kinds := workload.Kinds()
	served := func(k *workload.Kind) bool { return k.BuiltIn() }
	if c.Dynamic != nil {
		s, err := workload.Served(c.Kube.Discovery())
		if err != nil {
			return nil, fmt.Errorf("discover the served APIs: %w", err)
		}
		served = s
	}
	var mu sync.Mutex
	var out []*Workload
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		// Kinds of other APIs without a template this tool rewrites
		// (Knative Revisions, Argo Workflows) are readers only.
		if !served(k) || !k.Rewritable() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := k.List(ctx, c, ns, lo, func(obj workload.Object) {
				if k.Follows(obj) {
					return
				}
				mu.Lock()
				out = append(out, &Workload{Kind: k.Kind, Type: k, Object: obj})
				mu.Unlock()
			})
			switch {
			case err == nil, !k.BuiltIn() && apierrors.IsNotFound(err):
			case !k.BuiltIn() && apierrors.IsForbidden(err) && fo.Warn != nil:
				fo.Warn(kubeapi.DescribeAPIError(err, "list", k.ResourceGroup(), ns).Error() + ": its workloads are not looked at")
			default:
				errs[i] = kubeapi.DescribeAPIError(err, "list", k.ResourceGroup(), ns)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runners finds the workloads that run another one's template (an Argo
// Rollout's spec.workloadRef), by the namespace, group/kind and name of
// the workload whose template they run: those listed, or, for TYPE/NAME
// arguments, a LIST of each such kind in the namespace (none when the
// cluster does not serve it).
func runners(ctx context.Context, c workload.Clients, fo FindOptions, ws []*Workload) (map[string][]string, error) {
	out := map[string][]string{}
	add := func(obj workload.Object) {
		if gk, name, ok := workload.RunsTemplateOf(obj); ok {
			k := obj.GetNamespace() + "/" + gk.String() + "/" + name
			out[k] = append(out[k], workload.ForObject(obj).Ref(obj.GetName()))
		}
	}
	if len(fo.Refs) == 0 {
		for _, w := range ws {
			add(w.Object)
		}
		return out, nil
	}
	if c.Dynamic == nil {
		return out, nil
	}
	served, err := workload.Served(c.Kube.Discovery())
	if err != nil {
		return nil, fmt.Errorf("discover the served APIs: %w", err)
	}
	for _, k := range workload.Kinds() {
		if !k.RunsOthersTemplates() || !served(k) {
			continue
		}
		err := k.List(ctx, c, fo.Namespace, metav1.ListOptions{Limit: 500}, add)
		switch {
		case err == nil, apierrors.IsNotFound(err):
		case apierrors.IsForbidden(err) && fo.Warn != nil:
			fo.Warn(kubeapi.DescribeAPIError(err, "list", k.ResourceGroup(), fo.Namespace).Error() + ": whether one runs these templates is not known")
		default:
			return nil, kubeapi.DescribeAPIError(err, "list", k.ResourceGroup(), fo.Namespace)
		}
	}
	return out, nil
}
