package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

// The workloads rig (Options.Workloads, `hack/local-cluster.sh up
// --workloads`): workload controllers, kube-scheduler and kwok's fake nodes
// run pods, but kwok mounts no volumes and mints no tokens. These helpers do
// what the kubelet would do for a pod's identity, and judge rollouts as
// `kubectl rollout status` does.

// NodeConfig is a client configuration that authenticates as the kubelet of
// node: a client certificate for user system:node:NODE in group system:nodes,
// signed by the cluster's CA (what kubelet TLS bootstrap obtains). The Node
// authorizer recognises nodes by exactly this identity
// (pkg/auth/nodeidentifier/default.go, NodeIdentity) and lets a node ask for
// a token only for a ServiceAccount of a pod bound to it
// (plugin/pkg/auth/authorizer/node/node_authorizer.go, authorizeCreateToken).
func (c *Cluster) NodeConfig(node string) (*rest.Config, error) {
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(filepath.Dir(c.CAFile), "ca.key"))
	if err != nil {
		return nil, err
	}
	caBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if caBlock == nil || keyBlock == nil {
		return nil, fmt.Errorf("cannot read the cluster CA from %s", filepath.Dir(c.CAFile))
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return nil, err
	}
	var caKey any
	if caKey, err = x509.ParsePKCS8PrivateKey(keyBlock.Bytes); err != nil {
		if caKey, err = x509.ParsePKCS1PrivateKey(keyBlock.Bytes); err != nil {
			return nil, fmt.Errorf("cluster CA key: %w", err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(c.RESTConfig)
	cfg.CertData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cfg.UserAgent = "kubelet/" + node + " (e2e stand-in)"
	return cfg, nil
}

// KubeletToken is the token the kubelet would write for one
// serviceAccountToken source of a pod's projected volume.
type KubeletToken struct {
	Volume     string
	Source     corev1.ServiceAccountTokenProjection
	Token      string
	Expiration time.Time
}

// KubeletTokens sends, as the kubelet of the pod's node, the TokenRequest
// the kubelet sends for every serviceAccountToken source of the pod's
// projected volumes, in spec order. The request is the one of
// pkg/volume/projected/projected.go (collectData): for the pod's
// spec.serviceAccountName, audiences = [source.audience] or none (then the
// API's audiences), the source's expirationSeconds, bound to the pod
// (BoundObjectReference v1 Pod, its name and uid); the kubelet's token
// manager sends it unchanged (pkg/kubelet/token/token_manager.go,
// GetServiceAccountToken). The pod must be scheduled.
func (c *Cluster) KubeletTokens(ctx context.Context, pod *corev1.Pod) ([]KubeletToken, error) {
	if pod.Spec.NodeName == "" {
		return nil, fmt.Errorf("pod %s/%s is not scheduled: no kubelet would mount its volumes", pod.Namespace, pod.Name)
	}
	cfg, err := c.NodeConfig(pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	node, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var out []KubeletToken
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			tp := s.ServiceAccountToken
			if tp == nil {
				continue
			}
			var auds []string
			if tp.Audience != "" {
				auds = []string{tp.Audience}
			}
			tr, err := node.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
				Spec: authenticationv1.TokenRequestSpec{
					Audiences:         auds,
					ExpirationSeconds: tp.ExpirationSeconds,
					BoundObjectRef: &authenticationv1.BoundObjectReference{
						APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
					},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				return out, fmt.Errorf("TokenRequest for volume %s of pod %s/%s as node %s: %w", v.Name, pod.Namespace, pod.Name, pod.Spec.NodeName, err)
			}
			out = append(out, KubeletToken{Volume: v.Name, Source: *tp, Token: tr.Status.Token, Expiration: tr.Status.ExpirationTimestamp.Time})
		}
	}
	return out, nil
}

// ReviewToken asks the apiserver (TokenReview, as admin) who token is for
// the given audiences (none: the API's).
func (c *Cluster) ReviewToken(ctx context.Context, token string, audiences ...string) (*authenticationv1.TokenReview, error) {
	return c.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences},
	}, metav1.CreateOptions{})
}

var rolloutResources = map[string]schema.GroupVersionResource{
	"Deployment":  {Group: "apps", Version: "v1", Resource: "deployments"},
	"StatefulSet": {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"DaemonSet":   {Group: "apps", Version: "v1", Resource: "daemonsets"},
}

// RolloutStatus judges a workload (kind Deployment, StatefulSet or
// DaemonSet) with kubectl's own StatusViewer, the code behind `kubectl
// rollout status` (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go):
// the message it prints and whether it is done.
func (c *Cluster) RolloutStatus(ctx context.Context, kind, ns, name string) (string, bool, error) {
	gvr, ok := rolloutResources[kind]
	if !ok {
		return "", false, fmt.Errorf("no rollout status for kind %q", kind)
	}
	viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: gvr.Group, Kind: kind})
	if err != nil {
		return "", false, err
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return "", false, err
	}
	obj, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", false, err
	}
	return viewer.Status(obj, 0)
}

// WaitRolledOut waits until `kubectl rollout status` would call the
// workload rolled out, and fails the test with its last message otherwise.
func (c *Cluster) WaitRolledOut(t testing.TB, kind, ns, name string, timeout time.Duration) {
	t.Helper()
	var msg string
	c.Eventually(t, timeout, func() (bool, error) {
		m, done, err := c.RolloutStatus(context.Background(), kind, ns, name)
		msg = strings.TrimSpace(m)
		if err != nil {
			return false, err
		}
		if !done {
			return false, fmt.Errorf("%s", msg)
		}
		return true, nil
	})
	t.Logf("%s %s/%s: %s", kind, ns, name, msg)
}
