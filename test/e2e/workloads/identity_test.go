package workloads

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// The layout of the automatic kube-api-access volume, with an audience of
// its own: what `switch` writes in place of a legacy token Secret.
func projectedTokenVolume(name, audience string, seconds int64) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: framework.Ptr[int32](0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: audience, ExpirationSeconds: &seconds}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

// kwok mounts nothing, so a running pod's identity is proven by doing what
// its kubelet would: for each projected serviceAccountToken source (ours,
// and the kube-api-access volume the ServiceAccount admission plugin adds),
// the TokenRequest sent as the pod's node, bound to the pod, with the
// source's audience and lifetime; TokenReview must accept each as the pod's
// ServiceAccount, carrying the pod and node. The same request as another
// node is refused (so this really is the node's request), and once the pod
// is gone its tokens are rejected (so they really are bound to it).
func TestPodIdentityAsTheKubelet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := cluster.CreateNamespace(t, "identity")
	cluster.CreateServiceAccount(t, ns, "app")
	tmpl := podTemplate("ident")
	tmpl.Spec.ServiceAccountName = "app"
	tmpl.Spec.Volumes = []corev1.Volume{projectedTokenVolume("vault-token", "vault", 1200)}
	tmpl.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "vault-token", MountPath: "/var/run/secrets/vault"}}
	cluster.CreateDeployment(t, ns, "ident", 1, tmpl, nil)
	cluster.WaitRolledOut(t, "Deployment", ns, "ident", rolloutTimeout)
	pod := waitPods(t, ns, "ident", 1, nil)[0]

	// The ServiceAccount admission plugin added the kube-api-access volume
	// (plugin/pkg/admission/serviceaccount/admission.go,
	// mountServiceAccountToken; expirationSeconds
	// serviceaccount.WarnOnlyBoundTokenExpirationSeconds = 3607, no audience).
	start := time.Now()
	toks, err := cluster.KubeletTokens(ctx, &pod)
	if err != nil {
		t.Fatal(err)
	}
	var sawAPIAccess, sawVault bool
	var vols []string
	for _, tok := range toks {
		vols = append(vols, tok.Volume)
		switch {
		case tok.Volume == "vault-token":
			sawVault = true
		case strings.HasPrefix(tok.Volume, "kube-api-access-") && tok.Source.Audience == "" && *tok.Source.ExpirationSeconds == 3607:
			sawAPIAccess = true
		}
		// The server answers with now + the requested lifetime
		// (pkg/registry/core/serviceaccount/storage/token.go, Create).
		want := start.Add(time.Duration(*tok.Source.ExpirationSeconds) * time.Second)
		if d := tok.Expiration.Sub(want); d < -5*time.Second || d > time.Minute {
			t.Errorf("volume %s: token expires %s, want about %s (expirationSeconds %d)", tok.Volume, tok.Expiration, want, *tok.Source.ExpirationSeconds)
		}
		var auds []string
		if tok.Source.Audience != "" {
			auds = []string{tok.Source.Audience}
		}
		checkIdentity(t, tok, auds, "system:serviceaccount:"+ns+":app", &pod)
	}
	if !sawVault || !sawAPIAccess {
		t.Fatalf("tokens for volumes %v: want vault-token and the automatic kube-api-access-* (ServiceAccount admission on)", vols)
	}

	// A token for the audience "vault" is no API credential.
	for _, tok := range toks {
		if tok.Volume != "vault-token" {
			continue
		}
		r, err := cluster.ReviewToken(ctx, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Authenticated {
			t.Errorf("the vault-audience token authenticates for the API's audiences: %+v", r.Status)
		}
	}

	// The Node authorizer lets only the pod's node ask.
	var other string
	for _, n := range cluster.Nodes {
		if n != pod.Spec.NodeName {
			other = n
		}
	}
	impostor := pod.DeepCopy()
	impostor.Spec.NodeName = other
	if _, err := cluster.KubeletTokens(ctx, impostor); !apierrors.IsForbidden(err) {
		t.Fatalf("TokenRequest for pod %s (on %s) sent as node %s: %v, want forbidden", pod.Name, pod.Spec.NodeName, other, err)
	}

	// Bound to the pod: gone with it. The apiserver caches a token's
	// authentication for ~10 s.
	if err := cluster.Client.AppsV1().Deployments(ns).Delete(ctx, "ident", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, rolloutTimeout, func() (bool, error) {
		_, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		for _, tok := range toks {
			var auds []string
			if tok.Source.Audience != "" {
				auds = []string{tok.Source.Audience}
			}
			r, err := cluster.ReviewToken(ctx, tok.Token, auds...)
			if err != nil || r.Status.Authenticated {
				return false, err
			}
		}
		return true, nil
	})
}

// checkIdentity: TokenReview accepts tok for auds as user, with the pod's
// and node's names and uids in extra (k8s.io/apiserver
// pkg/authentication/serviceaccount/util.go: PodNameKey, PodUIDKey,
// NodeNameKey; the node is added to pod-bound tokens since
// ServiceAccountTokenPodNodeInfo, GA and locked on in 1.32).
func checkIdentity(t *testing.T, tok framework.KubeletToken, auds []string, user string, pod *corev1.Pod) {
	t.Helper()
	r, err := cluster.ReviewToken(context.Background(), tok.Token, auds...)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Status
	if !st.Authenticated || st.User.Username != user {
		t.Fatalf("volume %s: TokenReview %+v, want %s authenticated", tok.Volume, st, user)
	}
	extra := func(k string) string {
		if v := st.User.Extra[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	if extra("authentication.kubernetes.io/pod-name") != pod.Name || extra("authentication.kubernetes.io/pod-uid") != string(pod.UID) ||
		extra("authentication.kubernetes.io/node-name") != pod.Spec.NodeName {
		t.Errorf("volume %s: extra %v, want pod %s (%s) on node %s", tok.Volume, st.User.Extra, pod.Name, pod.UID, pod.Spec.NodeName)
	}
	if len(auds) > 0 && (len(st.Audiences) != 1 || st.Audiences[0] != auds[0]) {
		t.Errorf("volume %s: audiences %v, want %v", tok.Volume, st.Audiences, auds)
	}
}
