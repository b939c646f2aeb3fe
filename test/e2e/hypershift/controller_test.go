package hypershift

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/bound-token/kubectl-bound-token/pkg/hypershift"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// simUserAgent tells the simulation's requests from rotate's in the audit log.
const simUserAgent = "hostedcluster-controller (e2e simulation)"

// configHash is the pod-template annotation HyperShift's control-plane
// operator sets to a hash of the Secrets and ConfigMaps a component mounts,
// so that a changed signing key rolls kube-apiserver
// (support/controlplane-component/defaults.go,
// applyWatchedResourcesAnnotation).
const configHash = "component.hypershift.openshift.io/config-hash"

// controller simulates, for the HostedClusters of one namespace, what
// HyperShift does with spec.serviceAccountSigningKey:
//   - the hostedcluster controller validates the Secret
//     (hypershift-operator/controllers/hostedcluster/hostedcluster_controller.go,
//     validateServiceAccountSigningKey and serviceAccountSigningKeyBytes: an
//     issuerURL must be set, the Secret must exist and hold "key", read with
//     certs.PemToPrivateKey = first PEM block, x509.ParsePKCS1PrivateKey)
//     and sets condition ValidConfiguration from
//     validateConfigAndClusterCapabilities, with observedGeneration, reason
//     InvalidConfiguration or AsExpected, and the error as message, wrapped
//     "invalid service account signing key: ...";
//   - "old-key.pub" is appended verbatim to the public key kube-apiserver
//     reads with --service-account-key-file; kube-apiserver would not start
//     on a block that is not a PEM public key. The simulation, stricter,
//     reports that as ValidConfiguration False too;
//   - on a valid key, the control-plane operator sets the kube-apiserver
//     Deployment's pod-template config hash (after RolloutDelay), which the
//     real deployment controller rolls out on kwok's nodes.
//
// RejectNext makes it reject the next new key as HyperShift rejects a key
// it cannot parse, whatever the key.
type controller struct {
	dyn        dynamic.Interface
	cs         kubernetes.Interface
	ns         string
	RejectNext atomic.Bool
	// RolloutDelay: how long after validating the control-plane operator
	// changes the Deployment.
	RolloutDelay time.Duration

	mu       sync.Mutex
	rejected map[string]bool // Secret names rejected by RejectNext
}

func newController(t *testing.T, ns string) *controller {
	t.Helper()
	cfg := rest.CopyConfig(cluster.RESTConfig)
	cfg.UserAgent = simUserAgent
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &controller{dyn: dyn, cs: cs, ns: ns, RolloutDelay: time.Second, rejected: map[string]bool{}}
}

// run reconciles every HostedCluster of the namespace on each change, one
// at a time, until the test ends.
func (c *controller) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, 0, c.ns, nil)
	inf := f.ForResource(hypershift.HostedClusterGVR).Informer()
	queue := make(chan string, 100)
	enqueue := func(obj any) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			queue <- u.GetName()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case name := <-queue:
				if err := c.reconcile(ctx, name); err != nil && ctx.Err() == nil {
					t.Logf("simulated hostedcluster controller: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); f.Shutdown(); <-done })
}

func (c *controller) reconcile(ctx context.Context, name string) error {
	hc, err := c.dyn.Resource(hypershift.HostedClusterGVR).Namespace(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	keyPEM, oldPub, verr := c.validate(ctx, hc)
	secret := hypershift.SigningKeyName(hc)
	if verr == nil && secret != "" {
		c.mu.Lock()
		if c.rejected[secret] || c.RejectNext.CompareAndSwap(true, false) {
			c.rejected[secret] = true
			verr = fmt.Errorf("cannot decode private key in secret %s: x509: failed to parse private key (simulated rejection)", secret)
		}
		c.mu.Unlock()
	}
	cond := metav1.Condition{Type: hypershift.ValidConfiguration, ObservedGeneration: hc.GetGeneration(),
		Status: metav1.ConditionTrue, Reason: "AsExpected", Message: "Configuration passes validation"}
	if verr != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "InvalidConfiguration", "invalid service account signing key: "+verr.Error()
	}
	if err := c.setCondition(ctx, name, cond); err != nil {
		return err
	}
	if verr != nil || secret == "" {
		return nil
	}
	sum := sha256.Sum256(append(append([]byte{}, keyPEM...), oldPub...))
	hash := hex.EncodeToString(sum[:4])
	cp := hypershift.ControlPlaneNamespace(c.ns, name)
	dep, err := c.cs.AppsV1().Deployments(cp).Get(ctx, hypershift.KASDeployment, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if dep.Spec.Template.Annotations[configHash] == hash {
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(c.RolloutDelay):
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": map[string]string{configHash: hash}}}}})
	_, err = c.cs.AppsV1().Deployments(cp).Patch(ctx, hypershift.KASDeployment, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// validate applies HyperShift's rules (see controller) and returns the
// key and old-key.pub bytes.
func (c *controller) validate(ctx context.Context, hc *unstructured.Unstructured) ([]byte, []byte, error) {
	name := hypershift.SigningKeyName(hc)
	if name == "" {
		return nil, nil, nil
	}
	if issuer, _, _ := unstructured.NestedString(hc.Object, "spec", "issuerURL"); issuer == "" {
		return nil, nil, fmt.Errorf("the IssuerURL must be set when specifying a service account signing key")
	}
	s, err := c.cs.CoreV1().Secrets(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to get hostedcluster ServiceAccountSigningKey secret %s: %w", name, err)
	}
	key, ok := s.Data["key"]
	if !ok {
		return nil, nil, fmt.Errorf("cannot find service account key %q in secret %s", "key", name)
	}
	blk, _ := pem.Decode(key)
	if blk == nil {
		return nil, nil, fmt.Errorf("cannot decode private key in secret %s: could not find a PEM block in the private key", name)
	}
	if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
		return nil, nil, fmt.Errorf("cannot decode private key in secret %s: %w", name, err)
	}
	old, hasOld := s.Data["old-key.pub"]
	if hasOld {
		n := 0
		for rest := old; ; n++ {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if _, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
				return nil, nil, fmt.Errorf("old-key.pub in secret %s: a %q block is not a public key (kube-apiserver would not start)", name, b.Type)
			}
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("old-key.pub in secret %s is not PEM (kube-apiserver would not start)", name)
		}
	}
	return key, old, nil
}

func (c *controller) setCondition(ctx context.Context, name string, cond metav1.Condition) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		hc, err := c.dyn.Resource(hypershift.HostedClusterGVR).Namespace(c.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var conds []metav1.Condition
		if raw, ok, _ := unstructured.NestedSlice(hc.Object, "status", "conditions"); ok {
			b, _ := json.Marshal(raw)
			_ = json.Unmarshal(b, &conds)
		}
		if cond.ObservedGeneration != hc.GetGeneration() {
			return nil // a newer generation is queued
		}
		meta.SetStatusCondition(&conds, cond)
		b, _ := json.Marshal(conds)
		var raw []any
		_ = json.Unmarshal(b, &raw)
		if err := unstructured.SetNestedSlice(hc.Object, raw, "status", "conditions"); err != nil {
			return err
		}
		_, err = c.dyn.Resource(hypershift.HostedClusterGVR).Namespace(c.ns).UpdateStatus(ctx, hc, metav1.UpdateOptions{})
		return err
	})
}

// hostedCluster is one HostedCluster "prod" in a fresh namespace, signing
// with key (nil: a fresh PKCS#1 RSA key) in Secret "sa-key", its control
// plane namespace with a rolled-out 2-replica kube-apiserver Deployment on
// kwok nodes, and a running simulated controller.
type hostedCluster struct {
	ns, cp string
	old    *keys.Pair
	sim    *controller
	dyn    dynamic.Interface
}

func newHostedCluster(t *testing.T, issuer string, keyPEM []byte) *hostedCluster {
	t.Helper()
	ctx := context.Background()
	cluster.InstallCRD(t, "hostedclusters.hypershift.openshift.io", false)
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	h := &hostedCluster{ns: cluster.CreateNamespace(t, "hs"), dyn: dyn}
	h.cp = hypershift.ControlPlaneNamespace(h.ns, "prod")
	if keyPEM == nil {
		if h.old, err = keys.Generate("rsa2048", false); err != nil {
			t.Fatal(err)
		}
		keyPEM = h.old.PrivatePEM
	}
	if _, err := cluster.Client.CoreV1().Secrets(h.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sa-key"}, Data: map[string][]byte{"key": keyPEM}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.cp}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), h.cp, metav1.DeleteOptions{})
	})
	cluster.Eventually(t, time.Minute, func() (bool, error) {
		_, err := cluster.Client.CoreV1().ServiceAccounts(h.cp).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	two, zero := int32(2), int64(0)
	labels := map[string]string{"app": "kube-apiserver"}
	if _, err := cluster.Client.AppsV1().Deployments(h.cp).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: hypershift.KASDeployment},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers:                    []corev1.Container{{Name: "kube-apiserver", Image: "registry.k8s.io/pause:3.10"}},
				TerminationGracePeriodSeconds: &zero,
			}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.WaitRolledOut(t, "Deployment", h.cp, hypershift.KASDeployment, rolloutTimeout)
	h.sim = newController(t, h.ns)
	h.sim.run(t)
	hc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster",
		"metadata": map[string]any{"name": "prod", "namespace": h.ns},
		"spec":     framework.HostedClusterSpec(issuer, "sa-key"),
	}}
	if _, err := dyn.Resource(hypershift.HostedClusterGVR).Namespace(h.ns).Create(ctx, hc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The simulation has judged the initial key.
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		c := hypershift.GetCondition(h.get(t), hypershift.ValidConfiguration)
		return c != nil && c.ObservedGeneration == h.get(t).GetGeneration(), fmt.Errorf("ValidConfiguration %+v", c)
	})
	// and, for a valid key, the Deployment rolled out its hash.
	if c := hypershift.GetCondition(h.get(t), hypershift.ValidConfiguration); c.Status == "True" {
		cluster.Eventually(t, 30*time.Second, func() (bool, error) {
			return h.deployment(t).Spec.Template.Annotations[configHash] != "", fmt.Errorf("no %s yet", configHash)
		})
		cluster.WaitRolledOut(t, "Deployment", h.cp, hypershift.KASDeployment, rolloutTimeout)
	}
	return h
}

func (h *hostedCluster) get(t testing.TB) *unstructured.Unstructured {
	t.Helper()
	hc, err := h.dyn.Resource(hypershift.HostedClusterGVR).Namespace(h.ns).Get(context.Background(), "prod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

func (h *hostedCluster) deployment(t testing.TB) *appsv1.Deployment {
	t.Helper()
	d, err := cluster.Client.AppsV1().Deployments(h.cp).Get(context.Background(), hypershift.KASDeployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *hostedCluster) secrets(t testing.TB) []string {
	t.Helper()
	list, err := cluster.Client.CoreV1().Secrets(h.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Name)
	}
	return out
}
