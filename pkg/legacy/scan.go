package legacy

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/bound-token/kubectl-bound-token/pkg/kubeapi"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// call runs one write, repeated on transient errors (pkg/retry; reads use
// retry.Value). Only writes that are safe to repeat go through it: guarded
// by a resourceVersion or uid precondition, idempotent patches, fixed-name
// creates.
func call(ctx context.Context, fn func(context.Context) error) error {
	_, err := retry.Do(ctx, retry.Default, fn)
	return err
}

// callRetried is call that also reports how many times fn ran: after more
// than one, an earlier attempt may have been applied although its answer
// was lost, and a precondition failure may be the trace of our own write.
func callRetried(ctx context.Context, fn func(context.Context) error) (int, error) {
	return retry.Do(ctx, retry.Default, fn)
}

// ScanOptions select the Secrets to judge and what the judgement uses.
type ScanOptions struct {
	Namespace string // "" means every namespace
	// Names keeps only these Secrets of Namespace.
	Names    []string
	Selector string // label selector on the Secrets
	AutoOnly bool
	// Threshold is how long a token must be unused (or invalid) to be
	// called safe to invalidate (delete); 0 means DefaultThreshold.
	Threshold time.Duration
	// CleanupPeriod is kube-controller-manager's cleaner period, for the
	// forecast; 0 means DefaultCleanupPeriod.
	CleanupPeriod time.Duration
	// Seen returns evidence of use from outside the cluster's objects (an
	// audit log), or nil.
	Seen     func(ns, name string) *SeenUse
	Now      time.Time
	PageSize int64
	// Metadata, when set, lists the Secrets for their metadata only
	// (PartialObjectMetadataList): a verdict reads nothing else, so the
	// tokens themselves never leave the cluster, and the answer is a
	// fraction of the bytes to encode, send and decode. Findings then
	// carry a Secret with its metadata and type only: a run that keeps
	// Secrets (a backup) lists them whole, without Metadata.
	Metadata metadata.Interface
	// Dynamic reads the objects of APIs beyond the built-in kinds whose
	// schemas hold pod specs (customReaders); nil makes their readers,
	// when the cluster serves such APIs, unknown.
	Dynamic dynamic.Interface
}

// ScanInfo is what every verdict of a scan rests on.
type ScanInfo struct {
	Tracking          Tracking `json:"tracking"`
	ThresholdDays     int      `json:"thresholdDays"`
	CleanupPeriodDays int      `json:"cleanupPeriodDays"`
	// Warnings name readers that could not be listed (their Secrets are
	// judged unknown).
	Warnings []string `json:"warnings,omitempty"`
	// WorkloadAPIs lists the APIs beyond the built-in kinds whose pod
	// specs the server's schemas show (workload.Discover), as
	// resource.group: their objects are read for readers, and one that
	// cannot be read is in Warnings.
	WorkloadAPIs []string `json:"workloadAPIs,omitempty"`
}

// secretPages is how many times the page size the Secret LIST's pages
// hold. Each later page of a LIST across namespaces costs kube-apiserver
// the items from where the last page stopped to the end of the type's
// keys before it filters them (k8s.io/apiserver pkg/storage/cacher/store/
// store_btree.go, OrderedListPrefix, from watch_cache.go
// waitAndListExactRV; seen in apiserver_storage_list_fetched_objects_total),
// so the whole LIST costs about pages × Secrets / 2: measured on 120,000
// stored Secrets (make bench-scale), pages of 500 took 5.2 s on 1.37 and
// 8.4 s on 1.34, pages of 2,000 took 2.0 s and 2.4 s. An audit lists the
// Secrets' metadata (about 1 KB each), a twentieth of a pod's page, so
// four times the page of the readers' full objects costs little memory.
const secretPages = 4

// Scan judges the legacy token Secrets of the scope, page by page, and
// calls fn for each one that passes the filters. The tracking start,
// ServiceAccounts, pods and workloads of the namespace scope are read
// first (the selection narrows which Secrets are judged, never where
// readers are looked for), page by page, and only the references are
// kept, so memory follows the number of references, not of objects.
func Scan(ctx context.Context, client kubernetes.Interface, opts ScanOptions, fn func(*Finding) error) (*ScanInfo, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.PageSize == 0 {
		opts.PageSize = 500
	}
	if opts.Threshold <= 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.CleanupPeriod <= 0 {
		opts.CleanupPeriod = DefaultCleanupPeriod
	}
	names, err := checkNames(ctx, client, opts.Namespace, opts.Names)
	if err != nil {
		return nil, err
	}
	info := &ScanInfo{ThresholdDays: days(opts.Threshold), CleanupPeriodDays: days(opts.CleanupPeriod)}
	sc, err := loadScope(ctx, client, opts.Dynamic, opts.Namespace, opts.PageSize, info)
	if err != nil {
		return nil, err
	}
	j := &judge{now: opts.Now, threshold: opts.Threshold, period: opts.CleanupPeriod, tracking: info.Tracking, seen: opts.Seen}
	lo := metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
		LabelSelector: opts.Selector,
		Limit:         secretPages * opts.PageSize,
	}
	// Described here, so that fn's own errors pass through unchanged.
	list := func(ctx context.Context, lo metav1.ListOptions) (*corev1.SecretList, error) {
		var l *corev1.SecretList
		var err error
		if opts.Metadata != nil {
			l, err = listSecretMetadata(ctx, opts.Metadata, opts.Namespace, lo)
		} else {
			l, err = client.CoreV1().Secrets(opts.Namespace).List(ctx, lo)
		}
		if err != nil {
			return nil, kubeapi.DescribeAPIError(err, "list", "secrets", opts.Namespace)
		}
		return l, nil
	}
	return info, kubeapi.EachPage(ctx, lo, list, func(list *corev1.SecretList) error {
		for i := range list.Items {
			if names != nil && !names[list.Items[i].Name] {
				continue
			}
			f := newFinding(&list.Items[i])
			sc.describe(f)
			if opts.AutoOnly && !f.AutoGenerated {
				continue
			}
			j.judge(f)
			if err := fn(f); err != nil {
				return err
			}
		}
		return nil
	})
}

// listSecretMetadata lists the Secrets of lo for their metadata only, as
// Secrets with no data. lo must select one type by field selector (the
// type is not part of the metadata): the apiserver applies field selectors
// before it strips the objects to their metadata
// (k8s.io/apiserver/pkg/endpoints/handlers/get.go ListResource lists with
// the selectors, then response.go transformResponseObject converts the
// list for as=PartialObjectMetadataList).
func listSecretMetadata(ctx context.Context, md metadata.Interface, ns string, lo metav1.ListOptions) (*corev1.SecretList, error) {
	sel, err := fields.ParseSelector(lo.FieldSelector)
	if err != nil {
		return nil, err
	}
	typ, ok := sel.RequiresExactMatch("type")
	if !ok {
		return nil, fmt.Errorf("internal error: a metadata-only LIST of Secrets needs a type field selector")
	}
	pl, err := md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(ns).List(ctx, lo)
	if err != nil {
		return nil, err
	}
	l := &corev1.SecretList{ListMeta: pl.ListMeta, Items: make([]corev1.Secret, len(pl.Items))}
	for i := range pl.Items {
		l.Items[i] = corev1.Secret{ObjectMeta: pl.Items[i].ObjectMeta, Type: corev1.SecretType(typ)}
	}
	return l, nil
}

// checkNames makes sure every named Secret exists and is a legacy token,
// before anything is judged or changed.
func checkNames(ctx context.Context, client kubernetes.Interface, ns string, names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, n := range names {
		s, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*corev1.Secret, error) {
			return client.CoreV1().Secrets(ns).Get(ctx, n, metav1.GetOptions{})
		})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %q not found in namespace %s", n, ns)
		}
		if err != nil {
			return nil, kubeapi.DescribeAPIError(err, "get", "secrets", ns)
		}
		if s.Type != corev1.SecretTypeServiceAccountToken {
			return nil, fmt.Errorf("secret %s/%s is of type %s, not a legacy ServiceAccount token", ns, n, s.Type)
		}
		set[n] = true
	}
	return set, nil
}

func (sc *scope) describe(f *Finding) {
	k := f.Namespace + "/" + f.Name
	f.Readers = sc.readers[k]
	if any := sc.readers[anyNamespace+"/"+f.Name]; len(any) > 0 {
		f.Readers = fold(append(append([]Reader(nil), f.Readers...), any...))
	}
	f.readersUnknown = sc.readersUnknown
	if u := sc.unknownIn[f.Namespace]; u != "" {
		if f.readersUnknown != "" {
			u = f.readersUnknown + "; " + u
		}
		f.readersUnknown = u
	}
	sa, ok := sc.accounts[f.Namespace+"/"+f.ServiceAccount]
	want := f.Secret.Annotations[corev1.ServiceAccountUIDKey]
	switch {
	case !ok:
		f.ServiceAccountState = SAMissing
	case want != "" && want != sa.uid:
		f.ServiceAccountState = SAUIDMismatch
	default:
		f.ServiceAccountState = SAOK
	}
	// Listed by name in its ServiceAccount's .secrets, as the cleaner
	// decides (legacy_serviceaccount_token_cleaner.go, hasSecretReference).
	f.AutoGenerated = ok && sa.lists(f.Name)
}
