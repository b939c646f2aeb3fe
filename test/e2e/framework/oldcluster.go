package framework

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Helpers that make a fresh local cluster look like one that has run for
// years: objects created long ago, legacy-token tracking that began long
// ago. Only storage knows an object's age, so Backdate writes etcd itself;
// that needs a cluster started with Options.JSONStorage.

// The names below are kube-apiserver's and kube-controller-manager's own.
const (
	// TrackingConfigMap is the ConfigMap in kube-system whose data.since
	// (YYYY-MM-DD) is the day kube-apiserver began recording legacy token
	// use: ConfigMapName and ConfigMapDataKey in
	// pkg/controlplane/controller/legacytokentracking/controller.go.
	TrackingConfigMap = "kube-apiserver-legacy-service-account-token-tracking"
	TrackingSinceKey  = "since"
	// LastUsedLabel and InvalidSinceLabel are LastUsedLabelKey and
	// InvalidSinceLabelKey in pkg/serviceaccount/legacy.go.
	LastUsedLabel     = "kubernetes.io/legacy-token-last-used"
	InvalidSinceLabel = "kubernetes.io/legacy-token-invalid-since"
	// DayFormat is dateFormat in both files above.
	DayFormat = "2006-01-02"
)

// specialEtcdPrefixes are the resources kube-apiserver does not store
// under their own name: SpecialDefaultResourcePrefixes in
// pkg/kubeapiserver/default_storage_factory_builder.go.
var specialEtcdPrefixes = map[schema.GroupResource]string{
	{Group: "", Resource: "replicationcontrollers"}:     "controllers",
	{Group: "", Resource: "endpoints"}:                  "services/endpoints",
	{Group: "", Resource: "nodes"}:                      "minions",
	{Group: "", Resource: "services"}:                   "services/specs",
	{Group: "extensions", Resource: "ingresses"}:        "ingress",
	{Group: "networking.k8s.io", Resource: "ingresses"}: "ingress",
}

// EtcdKey is the etcd key under which kube-apiserver (default
// --etcd-prefix) stores an object:
//   - "/registry": DefaultEtcdPathPrefix in pkg/kubeapiserver/options/options.go;
//   - then the resource prefix: DefaultStorageFactory.ResourcePrefix in
//     k8s.io/apiserver/pkg/server/storage/storage_factory.go, the lowercased
//     resource name unless it is one of specialEtcdPrefixes;
//   - then "/NAMESPACE/NAME" or, cluster-scoped, "/NAME": NamespaceKeyFunc
//     and NoNamespaceKeyFunc in
//     k8s.io/apiserver/pkg/registry/generic/registry/store.go.
//
// So a Secret is /registry/secrets/NS/NAME.
func EtcdKey(gr schema.GroupResource, namespace, name string) string {
	prefix, ok := specialEtcdPrefixes[gr]
	if !ok {
		prefix = gr.Resource
	}
	if namespace == "" {
		return "/registry/" + prefix + "/" + name
	}
	return "/registry/" + prefix + "/" + namespace + "/" + name
}

// SecretsGVR is the resource BackdateSecret rewrites.
var SecretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// BackdateSecret is Backdate for a Secret.
func (c *Cluster) BackdateSecret(t testing.TB, namespace, name string, created time.Time) {
	t.Helper()
	c.Backdate(t, SecretsGVR, namespace, name, created)
}

// Backdate rewrites metadata.creationTimestamp of a stored object in etcd
// (to the second, in UTC, as metav1.Time stores it) and leaves every other
// byte of the stored JSON as it was. It then waits until kube-apiserver
// serves the new value from etcd and from its watch cache: a controller's
// informer lists from the cache, so only then does a controller started
// afterwards see the object as old. namespace is "" for a cluster-scoped
// object. The cluster must have been started with Options.JSONStorage.
func (c *Cluster) Backdate(t testing.TB, gvr schema.GroupVersionResource, namespace, name string, created time.Time) {
	t.Helper()
	if err := c.BackdateNow(gvr, namespace, name, created); err != nil {
		t.Fatal(err)
	}
}

// BackdateNow is Backdate returning an error, for programs without a
// testing.TB (hack/oldcluster, which `make demo` runs).
func (c *Cluster) BackdateNow(gvr schema.GroupVersionResource, namespace, name string, created time.Time) error {
	if c.EtcdURL == "" {
		return errors.New("the cluster's env file names no etcd (ETCD=): restart it with this repository's hack/local-cluster.sh")
	}
	key := EtcdKey(gvr.GroupResource(), namespace, name)
	stamp := created.UTC().Truncate(time.Second)
	var rev int64
	// A compare-and-swap on the key's mod_revision rather than a plain put:
	// kube-apiserver may write the same object between our read and our
	// write (the token controller filling a Secret, the last-used label),
	// and a plain put would silently undo that write.
	for attempt := 0; ; attempt++ {
		value, modRev, err := etcdGet(c.EtcdURL, key)
		if err != nil {
			return err
		}
		if value == nil {
			return fmt.Errorf("backdate: etcd has no key %s", key)
		}
		out, err := SetCreationTimestamp(value, stamp)
		if err != nil {
			return fmt.Errorf("backdate %s: %v", key, err)
		}
		var ok bool
		if rev, ok, err = etcdSwap(c.EtcdURL, key, modRev, out); err != nil {
			return err
		} else if ok {
			break
		}
		if attempt == 10 {
			return fmt.Errorf("backdate %s: the key kept changing under us", key)
		}
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	res := dyn.Resource(gvr).Namespace(namespace)
	// ResourceVersion "0" is served by the watch cache, "" (a consistent
	// read) by etcd or by a cache that has caught up with it; both must
	// show the write. The object's resourceVersion is its etcd mod_revision.
	return poll(30*time.Second, func() (bool, error) {
		for _, rv := range []string{"0", ""} {
			o, err := res.Get(context.Background(), name, metav1.GetOptions{ResourceVersion: rv})
			if err != nil {
				return false, err
			}
			got, _ := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
			if !o.GetCreationTimestamp().Time.Equal(stamp) || got < rev {
				return false, fmt.Errorf("read with resourceVersion %q: creationTimestamp %s at resourceVersion %d, want %s at %d or later",
					rv, o.GetCreationTimestamp().UTC().Format(time.RFC3339), got, stamp.Format(time.RFC3339), rev)
			}
		}
		return true, nil
	})
}

// SetCreationTimestamp returns stored, an object as kube-apiserver writes
// it to etcd with --storage-media-type=application/json, with the value of
// metadata.creationTimestamp replaced, and every other byte unchanged. It
// walks the JSON tokens rather than searching the text, so that a label
// or annotation named "creationTimestamp" is never mistaken for it.
func SetCreationTimestamp(stored []byte, created time.Time) ([]byte, error) {
	// The protobuf envelope starts with these 4 bytes
	// (k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go).
	if bytes.HasPrefix(stored, []byte("k8s\x00")) {
		return nil, errors.New("the object is stored as protobuf: start the cluster with framework.Options{JSONStorage: true}")
	}
	dec := json.NewDecoder(bytes.NewReader(stored))
	start, end, err := findMetadataField(dec, stored, "creationTimestamp")
	if err != nil {
		return nil, err
	}
	value, _ := json.Marshal(created.UTC().Truncate(time.Second).Format(time.RFC3339))
	out := make([]byte, 0, len(stored)+len(value))
	out = append(append(append(out, stored[:start]...), value...), stored[end:]...)
	return out, nil
}

// findMetadataField returns the byte range of the value of
// metadata.<field> in doc.
func findMetadataField(dec *json.Decoder, doc []byte, field string) (start, end int, err error) {
	if err := expectDelim(dec, '{'); err != nil {
		return 0, 0, err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return 0, 0, err
		}
		if k != "metadata" {
			if err := skipValue(dec); err != nil {
				return 0, 0, err
			}
			continue
		}
		if err := expectDelim(dec, '{'); err != nil {
			return 0, 0, fmt.Errorf("metadata: %w", err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return 0, 0, err
			}
			if k != field {
				if err := skipValue(dec); err != nil {
					return 0, 0, err
				}
				continue
			}
			// The decoder stands just after the key; the value starts
			// after the colon and any white space.
			start = int(dec.InputOffset())
			for start < len(doc) && (doc[start] == ':' || doc[start] == ' ' || doc[start] == '\t' || doc[start] == '\n' || doc[start] == '\r') {
				start++
			}
			if _, err := dec.Token(); err != nil {
				return 0, 0, err
			}
			return start, int(dec.InputOffset()), nil
		}
		return 0, 0, fmt.Errorf("metadata has no %s", field)
	}
	return 0, 0, errors.New("the object has no metadata")
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("expected %q, found %v", d, tok)
	}
	return nil
}

func skipValue(dec *json.Decoder) error {
	var raw json.RawMessage
	return dec.Decode(&raw)
}

// EtcdGet reads one key (see EtcdKey) from etcd: the stored bytes (nil
// when absent) and the key's mod_revision. For tests that check what
// kube-apiserver stored.
func (c *Cluster) EtcdGet(t testing.TB, key string) ([]byte, int64) {
	t.Helper()
	v, rev, err := etcdGet(c.EtcdURL, key)
	if err != nil {
		t.Fatal(err)
	}
	return v, rev
}

// etcdGet reads one key through etcd's JSON gateway: its value (nil when
// absent) and mod_revision.
func etcdGet(etcdURL, key string) ([]byte, int64, error) {
	var rng struct {
		Kvs []struct {
			Value       string `json:"value"`
			ModRevision string `json:"mod_revision"`
		} `json:"kvs"`
	}
	if err := etcdCall(etcdURL+"/v3/kv/range", map[string]any{"key": b64(key)}, &rng); err != nil {
		return nil, 0, err
	}
	if len(rng.Kvs) == 0 {
		return nil, 0, nil
	}
	v, err := base64.StdEncoding.DecodeString(rng.Kvs[0].Value)
	if err != nil {
		return nil, 0, fmt.Errorf("etcd range %s: value: %v", key, err)
	}
	rev, err := strconv.ParseInt(rng.Kvs[0].ModRevision, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("etcd range %s: mod_revision %q: %v", key, rng.Kvs[0].ModRevision, err)
	}
	return v, rev, nil
}

// etcdSwap puts value at key only if the key's mod_revision is still
// modRev, and returns the store's revision after the write.
func etcdSwap(etcdURL, key string, modRev int64, value []byte) (int64, bool, error) {
	var txn struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
		Succeeded bool `json:"succeeded"`
	}
	if err := etcdCall(etcdURL+"/v3/kv/txn", map[string]any{
		"compare": []map[string]any{{
			"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": strconv.FormatInt(modRev, 10),
		}},
		"success": []map[string]any{{
			"request_put": map[string]any{"key": b64(key), "value": base64.StdEncoding.EncodeToString(value)},
		}},
	}, &txn); err != nil {
		return 0, false, err
	}
	rev, err := strconv.ParseInt(txn.Header.Revision, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("etcd txn %s: revision %q: %v", key, txn.Header.Revision, err)
	}
	return rev, txn.Succeeded, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// SetTrackingSince sets data.since of the tracking ConfigMap to day
// (YYYY-MM-DD in UTC, as kube-apiserver writes it) and waits until it
// reads back.
//
// It writes through the API: kube-apiserver's controller
// (pkg/controlplane/controller/legacytokentracking/controller.go,
// syncConfigMap) creates the ConfigMap with today when it is missing
// (rate-limited to once per 30 minutes, NewController), rewrites since to
// today when it does not parse as a date, and otherwise leaves it alone:
// a valid date we write stays. If the ConfigMap is not there yet our
// Create wins or the controller's does; either way the Update that follows
// sets our day.
func (c *Cluster) SetTrackingSince(t testing.TB, day time.Time) {
	t.Helper()
	if err := c.SetTrackingSinceNow(day); err != nil {
		t.Fatal(err)
	}
}

// TrackingSince reads data.since of the tracking ConfigMap.
func (c *Cluster) TrackingSince(t testing.TB) string {
	t.Helper()
	cm, err := c.Client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(context.Background(), TrackingConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data[TrackingSinceKey]
}

// SetLastUsed labels a Secret as kube-apiserver does when its legacy
// token authenticates: LastUsedLabel = day (YYYY-MM-DD, UTC).
func (c *Cluster) SetLastUsed(t testing.TB, namespace, name string, day time.Time) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{LastUsedLabel: day.UTC().Format(DayFormat)}}})
	if _, err := c.Client.CoreV1().Secrets(namespace).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// CreateLegacySecret creates a legacy token Secret for the ServiceAccount
// sa (created when missing), lists it in the ServiceAccount's .secrets when
// listed is set (as the token controller did for the ones it generated
// before 1.24; the cleaner touches only listed ones), waits until the
// running token controller has filled it, and returns it.
func (c *Cluster) CreateLegacySecret(t testing.TB, namespace, sa, name string, listed bool) *corev1.Secret {
	t.Helper()
	ctx := context.Background()
	core := c.Client.CoreV1()
	if _, err := core.ServiceAccounts(namespace).Get(ctx, sa, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		c.CreateServiceAccount(t, namespace, sa)
	} else if err != nil {
		t.Fatal(err)
	}
	_, err := core.Secrets(namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if listed {
		// A strategic merge patch adds to .secrets (merge key name)
		// rather than replacing the list.
		patch := fmt.Sprintf(`{"secrets":[{"name":%q}]}`, name)
		if _, err := core.ServiceAccounts(namespace).Patch(ctx, sa, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var s *corev1.Secret
	c.Eventually(t, 30*time.Second, func() (bool, error) {
		var err error
		s, err = core.Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && len(s.Data[corev1.ServiceAccountTokenKey]) > 0, err
	})
	return s
}

// CreateSecrets creates the n Secrets secret(0) ... secret(n-1) in ns, 16
// at a time (thousands in seconds), and fails the test at the first error.
func (c *Cluster) CreateSecrets(t testing.TB, ns string, n int, secret func(i int) *corev1.Secret) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := c.Client.CoreV1().Secrets(ns).Create(context.Background(), secret(i), metav1.CreateOptions{})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
