package legacy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
)

// The ConfigMap in which kube-apiserver records since when it tracks
// legacy token use (k8s.io/kubernetes
// pkg/controlplane/controller/legacytokentracking/controller.go,
// ConfigMapName and ConfigMapDataKey).
const (
	TrackingNamespace = "kube-system"
	TrackingConfigMap = "kube-apiserver-legacy-service-account-token-tracking"
	trackingKey       = "since"
)

// ReadTracking reads the tracking start. A missing, unreadable or malformed
// ConfigMap is not an error: use is then unknown, and Tracking says why.
// Errors are returned only for failures that stop the whole scan.
func ReadTracking(ctx context.Context, client kubernetes.Interface) (Tracking, error) {
	cm, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.ConfigMap, error) {
		return client.CoreV1().ConfigMaps(TrackingNamespace).Get(ctx, TrackingConfigMap, metav1.GetOptions{})
	})
	where := "ConfigMap " + TrackingNamespace + "/" + TrackingConfigMap
	switch {
	case apierrors.IsNotFound(err):
		return Tracking{Unknown: where + " not found: this apiserver does not record legacy token use (it does from Kubernetes 1.28)"}, nil
	case apierrors.IsForbidden(err):
		return Tracking{Unknown: "forbidden to read " + where + `; ask for RBAC that allows "get" on "configmaps" in kube-system`}, nil
	case err != nil:
		return Tracking{}, fmt.Errorf("get %s: %w", where, err)
	}
	v := cm.Data[trackingKey]
	t, perr := time.Parse(dateLayout, v)
	if perr != nil {
		return Tracking{Unknown: fmt.Sprintf("%s holds since=%q, not a date", where, v)}, nil
	}
	return Tracking{Since: t, Day: v}, nil
}

// scope is what the audit keeps of ServiceAccounts, pods and workloads.
type scope struct {
	accounts map[string]account  // namespace/name -> the ServiceAccount
	readers  map[string][]Reader // namespace/secret -> readers
	// readersUnknown says which readers could not be listed; it applies
	// to every Secret of the scope.
	readersUnknown string
	// unknownIn says, by namespace, which objects' pod specs could not be
	// read: it applies to the Secrets of that namespace only.
	unknownIn map[string]string
}

// account is what a verdict reads of a ServiceAccount.
type account struct {
	uid string
	// secrets are the names its secrets field lists, kept per account
	// rather than as one entry per Secret (a cluster of 100,000 legacy
	// Secrets lists most of them there), and searched as the cleaner
	// does (hasSecretReference).
	secrets []string
}

// lists says whether the account's secrets field names the Secret.
func (a account) lists(secret string) bool {
	return slices.Contains(a.secrets, secret)
}

// refs collects readers of one LIST; each LIST has its own, merged after.
type refs struct {
	readers map[string][]Reader
	owners  map[string]string // namespace/kind/name -> top owner kind/name
	err     error
	what    string
	// unread are objects whose pod specs could not be read, by
	// namespace (anyNamespace for a cluster-scoped one): the LIST itself
	// went on.
	unread map[string][]string
}

// cannotRead records an object whose pod specs could not be read.
func (r *refs) cannotRead(ns, why string) {
	if ns == "" {
		ns = anyNamespace
	}
	if r.unread == nil {
		r.unread = map[string][]string{}
	}
	if len(r.unread[ns]) < 3 {
		r.unread[ns] = append(r.unread[ns], why)
	}
}

func (r *refs) add(ns, secret string, rd Reader) {
	k := ns + "/" + secret
	r.readers[k] = append(r.readers[k], rd)
}

// workloadList is one LIST of objects whose specs name Secrets.
type workloadList struct {
	resource string
	run      func(ctx context.Context, r *refs) error
}

func loadScope(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, ns string, page int64, info *ScanInfo) (*scope, error) {
	sc := &scope{accounts: map[string]account{}, readers: map[string][]Reader{}}
	lists := readerLists(client, ns, page)
	results := make([]*refs, len(lists))
	var wg sync.WaitGroup
	// The LISTs are independent: run them at once, so the audit costs
	// about the slowest of them, not their sum.
	for i, l := range lists {
		results[i] = &refs{readers: map[string][]Reader{}, owners: map[string]string{}, what: l.resource}
		wg.Add(1)
		go func(l workloadList, r *refs) {
			defer wg.Done()
			r.err = l.run(ctx, r)
		}(l, results[i])
	}
	var saErr, trErr error
	var custom []*refs
	wg.Add(3)
	go func() {
		defer wg.Done()
		custom, info.WorkloadAPIs = customReaders(ctx, client, dyn, ns, page)
	}()
	go func() {
		defer wg.Done()
		saErr = kubeapi.EachPage(ctx, metav1.ListOptions{Limit: page}, client.CoreV1().ServiceAccounts(ns).List, func(l *corev1.ServiceAccountList) error {
			for _, sa := range l.Items {
				a := account{uid: string(sa.UID)}
				if len(sa.Secrets) > 0 {
					a.secrets = make([]string, len(sa.Secrets))
					for i, r := range sa.Secrets {
						a.secrets[i] = r.Name
					}
				}
				sc.accounts[sa.Namespace+"/"+sa.Name] = a
			}
			return nil
		})
	}()
	go func() {
		defer wg.Done()
		info.Tracking, trErr = ReadTracking(ctx, client)
	}()
	wg.Wait()
	results = append(results, custom...)
	if saErr != nil {
		return nil, kubeapi.DescribeAPIError(saErr, "list", "serviceaccounts", ns)
	}
	if trErr != nil {
		return nil, trErr
	}
	if err := sc.merge(ctx, results, ns, info); err != nil {
		return nil, err
	}
	return sc, nil
}

// merge puts the readers of every LIST into the scope, each with the top
// owner the LISTs recorded; a LIST that failed makes the readers of every
// Secret of the scope unknown, and says so.
func (sc *scope) merge(ctx context.Context, results []*refs, ns string, info *ScanInfo) error {
	owners := map[string]string{}
	var unknown []string
	for _, r := range results {
		if r.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			unknown = append(unknown, kubeapi.DescribeAPIError(r.err, "list", r.what, ns).Error())
			continue
		}
		for k, v := range r.owners {
			owners[k] = v
		}
		r.owners = nil
	}
	for _, r := range results {
		for nsOf, whys := range r.unread {
			why := "cannot read the pod specs of " + strings.Join(whys, "; ")
			info.Warnings = append(info.Warnings, why+": Secrets not known to be read in "+map[bool]string{true: "every namespace", false: "namespace " + nsOf}[nsOf == anyNamespace]+" are judged unknown")
			if nsOf == anyNamespace {
				unknown = append(unknown, why)
				continue
			}
			if sc.unknownIn == nil {
				sc.unknownIn = map[string]string{}
			}
			if sc.unknownIn[nsOf] != "" {
				why = sc.unknownIn[nsOf] + "; " + why
			}
			sc.unknownIn[nsOf] = why
		}
	}
	if len(unknown) > 0 {
		sc.readersUnknown = strings.Join(unknown, "; ")
		for _, u := range unknown {
			info.Warnings = append(info.Warnings, u+": Secrets not known to be read are judged unknown")
		}
	}
	// Each LIST's readers move into the scope (a Secret read by one kind
	// only keeps its LIST's slice) and the LIST lets go of its map, so
	// the readers are not held twice while the scope is built.
	for _, r := range results {
		if r.err != nil {
			continue
		}
		for k, rs := range r.readers {
			nsOf := k[:strings.IndexByte(k, '/')]
			for i := range rs {
				if rs[i].controller != "" {
					rs[i].Owner = topOwner(owners, nsOf, rs[i].controller)
				}
			}
			if have, ok := sc.readers[k]; ok {
				rs = append(have, rs...)
			}
			sc.readers[k] = rs
		}
		r.readers = nil
	}
	for k, rs := range sc.readers {
		sc.readers[k] = fold(rs)
	}
	return nil
}

// topOwner follows controller references through the owners the LISTs
// recorded (a pod's ReplicaSet to its Deployment, a Job to its CronJob).
func topOwner(owners map[string]string, ns, ref string) string {
	for i := 0; i < 4; i++ {
		up, ok := owners[ns+"/"+ref]
		if !ok {
			break
		}
		ref = up
	}
	return ref
}

// fold drops readers that repeat a listed workload: a Deployment's pods
// and current ReplicaSet when the Deployment itself is listed, and
// rollout history of a Deployment whose template reads the Secret anyway.
// Readers come out in a stable order.
func fold(rs []Reader) []Reader {
	listed := map[string]bool{}
	for _, r := range rs {
		if !r.History {
			listed[r.Kind+"/"+r.Name] = true
		}
	}
	out := rs[:0]
	seen := map[string]bool{}
	for _, r := range rs {
		if (r.controller != "" && listed[r.controller]) || (r.Owner != "" && listed[r.Owner] && r.Owner != r.Kind+"/"+r.Name) {
			continue
		}
		k := r.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].History != out[j].History {
			return !out[i].History
		}
		if out[i].Kind != out[j].Kind {
			return kindOrder(out[i].Kind) < kindOrder(out[j].Kind)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func kindOrder(k string) int {
	for i, o := range workload.Kinds() {
		if o.Name() == k {
			return i
		}
	}
	return 99
}

// template records the Secrets a workload's pod template names, and its
// controller when it names any: its pods read what its template reads, so
// a ReplicaSet or Job that reads nothing costs no entry, and memory
// follows the references, not the objects. A pod that reads more than its
// template (the ServiceAccount admission plugin adds the account's
// imagePullSecrets, plugin/pkg/admission/serviceaccount/admission.go,
// Admit) is still a reader, named under its ReplicaSet rather than the
// Deployment above it.
func template(r *refs, kind string, meta metav1.Object, spec *corev1.PodSpec, history bool) {
	ctrl := workload.Controller(meta)
	reads := false
	workload.VisitSecretNames(spec, func(name, via string) {
		reads = true
		r.add(meta.GetNamespace(), name, Reader{Kind: kind, Name: meta.GetName(), Via: via, History: history, controller: ctrl})
	})
	if reads && ctrl != "" {
		r.owners[meta.GetNamespace()+"/"+kind+"/"+meta.GetName()] = ctrl
	}
}

// readerLists is one LIST per built-in kind of the workload table (the
// kinds of other APIs are read as every API holding pod specs is,
// customReaders). A pod is a
// reader in every phase: the cleaner counts finished pods too
// (legacy_serviceaccount_token_cleaner.go, getMountedSecretNames lists all
// pods of the namespace). Rollout history (workload.History) is kept
// apart from readers.
func readerLists(client kubernetes.Interface, ns string, page int64) []workloadList {
	lo := metav1.ListOptions{Limit: page}
	var out []workloadList
	for _, k := range workload.Kinds() {
		if !k.BuiltIn() {
			continue
		}
		out = append(out, workloadList{k.Resource, func(ctx context.Context, r *refs) error {
			return k.List(ctx, workload.Clients{Kube: client}, ns, lo, func(o workload.Object) {
				if pod, ok := o.(*corev1.Pod); ok {
					ctrl := workload.Controller(pod)
					workload.VisitSecretNames(&pod.Spec, func(name, via string) {
						r.add(pod.Namespace, name, Reader{Kind: k.Name(), Name: pod.Name, Via: via, Phase: string(pod.Status.Phase), controller: ctrl})
					})
					return
				}
				template(r, k.Name(), o, &k.Template(o).Spec, workload.History(o))
			})
		}})
	}
	return out
}
