package legacy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	corev1 "k8s.io/api/core/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// anyNamespace keys the readers of a cluster-scoped object's pod spec:
// the namespace its pods run in cannot be told from its shape, so it reads
// a Secret of that name in every namespace.
const anyNamespace = "*"

// customWorkers bounds the LISTs of other APIs run at once: one waits
// for the server while another decodes.
const customWorkers = 8

// customReaders reads the pod specs of every API beyond the workload
// table that the server's schemas (/openapi/v3) show to hold them
// (workload.Discover): Argo Rollouts, Knative Services and Revisions,
// KEDA ScaledJobs, OpenShift DeploymentConfigs, Kubeflow jobs, ... Each
// object's pod specs are read from its data, at the paths its schema
// gives, or searched for by shape when its schema leaves spec opaque; the
// Secrets come from the data, as workload.VisitSecretNames visits a pod's.
// An API that cannot be read (its schema, its LIST, one object's data)
// gives a refs with err: the readers of the scope are then unknown.
func customReaders(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, ns string, page int64) ([]*refs, []string) {
	var out []*refs
	// One small GET first: a cluster that serves no group beyond the
	// built-in ones (most) costs no schema reads.
	groups, err := servedGroups(ctx, client)
	if err != nil {
		return append(out, &refs{what: "the served API groups (/apis)", err: fmt.Errorf("workloads of other APIs cannot be told: %w", err)}), nil
	}
	if !slices.ContainsFunc(groups, workload.MayHoldPodSpecs) {
		return nil, nil
	}
	apis, err := workload.Discover(ctx, client.Discovery())
	if err != nil {
		out = append(out, &refs{what: "the API schemas (/openapi/v3)", err: fmt.Errorf("workloads of other APIs cannot be told: %w", err)})
	}
	names := make([]string, len(apis))
	for i, a := range apis {
		names[i] = a.Resource + "." + a.Group
	}
	sort.Strings(names)
	results := make([]*refs, len(apis))
	kubeapi.Parallel(len(apis), customWorkers, func(i int) {
		a := apis[i]
		r := &refs{readers: map[string][]Reader{}, owners: map[string]string{}, what: a.Resource + "." + a.Group}
		known := workload.Lookup(a.Group, a.Kind)
		switch rc := client.Discovery().RESTClient(); {
		case rc != nil && !a.Opaque && (known == nil || !known.HasOwnReader()):
			r.err = listCustomJSON(ctx, rc, a, ns, page, r)
		case dyn == nil:
			r.err = fmt.Errorf("no client to read them")
		default:
			r.err = listCustom(ctx, dyn, a, ns, page, r)
		}
		results[i] = r
	})
	return append(out, results...), names
}

// listCustom lists one API page by page and records the Secrets of each
// object's pod specs.
func listCustom(ctx context.Context, dyn dynamic.Interface, a workload.API, ns string, page int64, r *refs) error {
	var ri dynamic.ResourceInterface = dyn.Resource(a.GroupVersionResource)
	if a.Namespaced {
		ri = dyn.Resource(a.GroupVersionResource).Namespace(ns)
	}
	typeName := workload.TypeName(a.Group, a.Kind)
	// A kind of the table says where its pod specs are when its schema
	// cannot (Argo Workflows' templates), and what of it is history.
	known := workload.Lookup(a.Group, a.Kind)
	return kubeapi.EachPage(ctx, metav1.ListOptions{Limit: page}, ri.List, func(l *unstructured.UnstructuredList) error {
		for i := range l.Items {
			o := &l.Items[i]
			history := workload.History(o)
			visit := func(path string, spec *corev1.PodSpec) error {
				customTemplate(r, typeName, o, spec, history)
				return nil
			}
			ok, err := known.PodSpecsOf(o.Object, visit)
			if !ok && a.Opaque {
				err = workload.SearchPodSpecs(o.Object, visit)
			}
			for _, p := range a.Paths {
				if !ok && err == nil {
					err = workload.PodSpecs(o.Object, p, visit)
				}
			}
			if err != nil {
				// One object's pod specs: its namespace's readers are
				// unknown, the other namespaces' are still read.
				r.cannotRead(o.GetNamespace(), fmt.Sprintf("%s %s: %v", typeName, objectName(o), err))
			}
		}
		return nil
	})
}

// customTemplate records the Secrets of one pod spec of a custom object;
// a cluster-scoped object's read a Secret of that name anywhere.
func customTemplate(r *refs, typeName string, o *unstructured.Unstructured, spec *corev1.PodSpec, history bool) {
	if o.GetNamespace() != "" {
		template(r, typeName, o, spec, history)
		return
	}
	workload.VisitSecretNames(spec, func(name, via string) {
		r.add(anyNamespace, name, Reader{Kind: typeName, Name: o.GetName(), Via: via, History: history})
	})
}

func objectName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// servedGroups names the API groups the server serves, from one GET of
// /apis in its unaggregated form (metav1.APIGroupList, Accept
// application/json), as client-go's DiscoveryClient.downloadAPIs reads it
// when UseLegacyDiscovery is set. ServerGroups would also GET /api (the
// core group, never one of ours) first, and ask for the aggregated
// document, which lists every resource of every group: twice the round
// trips and many times the bytes, for names alone. A client without a
// REST client (client-go's fakes) is asked through ServerGroups.
func servedGroups(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	var l *metav1.APIGroupList
	if rc := client.Discovery().RESTClient(); rc != nil {
		body, err := rc.Get().AbsPath("/apis").SetHeader("Accept", discovery.AcceptV1).Do(ctx).Raw()
		if err != nil {
			return nil, err
		}
		l = &metav1.APIGroupList{}
		if err := json.Unmarshal(body, l); err != nil {
			return nil, err
		}
	} else {
		var err error
		if l, err = client.Discovery().ServerGroups(); err != nil || l == nil {
			return nil, fmt.Errorf("no API groups: %v", err)
		}
	}
	names := make([]string, 0, len(l.Groups))
	for _, g := range l.Groups {
		names = append(names, g.Name)
	}
	return names, nil
}

// rawPage is one page of a LIST as JSON: each item is decoded only as far
// as its pod specs (workload.PodSpecsJSON) and its metadata.
type rawPage struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

func (p *rawPage) GetContinue() string { return p.Metadata.Continue }

// rawMeta is what the readers need of an object's metadata: not its
// managedFields, which are most of an object's bytes.
type rawMeta struct {
	Metadata struct {
		Name            string                  `json:"name"`
		Namespace       string                  `json:"namespace"`
		Labels          map[string]string       `json:"labels"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
	} `json:"metadata"`
}

// listCustomJSON is listCustom over the LIST's JSON, through the REST
// client, for an API whose schema gives the paths of its pod specs:
// decoding each object into generic maps and converting its pod specs,
// as the dynamic client and PodSpecs do, cost most of an audit's client
// time beside tens of thousands of such objects; only the metadata and
// the fields that can name a Secret are decoded here.
func listCustomJSON(ctx context.Context, rc rest.Interface, a workload.API, ns string, page int64, r *refs) error {
	path := []string{"/apis", a.Group, a.Version}
	if a.Namespaced && ns != "" {
		path = append(path, "namespaces", ns)
	}
	path = append(path, a.Resource)
	typeName := workload.TypeName(a.Group, a.Kind)
	list := func(ctx context.Context, lo metav1.ListOptions) (*rawPage, error) {
		req := rc.Get().AbsPath(path...).Param("limit", strconv.FormatInt(lo.Limit, 10))
		if lo.Continue != "" {
			req = req.Param("continue", lo.Continue)
		}
		body, err := req.Do(ctx).Raw()
		if err != nil {
			return nil, err
		}
		p := &rawPage{}
		if err := json.Unmarshal(body, p); err != nil {
			return nil, fmt.Errorf("%s: %v", a.Resource+"."+a.Group, err)
		}
		return p, nil
	}
	return kubeapi.EachPage(ctx, metav1.ListOptions{Limit: page}, list, func(p *rawPage) error {
		for _, item := range p.Items {
			var m rawMeta
			if err := json.Unmarshal(item, &m); err != nil {
				return fmt.Errorf("%s: %v", typeName, err)
			}
			o := &unstructured.Unstructured{Object: map[string]any{}}
			o.SetGroupVersionKind(a.GroupVersion().WithKind(a.Kind))
			o.SetName(m.Metadata.Name)
			o.SetNamespace(m.Metadata.Namespace)
			o.SetLabels(m.Metadata.Labels)
			o.SetOwnerReferences(m.Metadata.OwnerReferences)
			history := workload.History(o)
			for _, pp := range a.Paths {
				err := workload.PodSpecsJSON(item, pp, func(_ string, spec *corev1.PodSpec) error {
					customTemplate(r, typeName, o, spec, history)
					return nil
				})
				if err != nil {
					r.cannotRead(o.GetNamespace(), fmt.Sprintf("%s %s: %v", typeName, objectName(o), err))
					break
				}
			}
		}
		return nil
	})
}
