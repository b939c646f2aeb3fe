package rolloutse2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

const rolloutTimeout = 2 * time.Minute

// The real controller takes a new Rollout to Healthy, and after a change
// of its pod template, rolls it out again to Healthy at the new
// generation, with one updated, available replica whose ReplicaSet (the
// new template's) has its pod ready on a kwok node. Only the controller
// writes status.observedGeneration and status.phase, and only it creates
// the Rollout's ReplicaSets, so without it this fails.
func TestRolloutsControllerRollsOutARollout(t *testing.T) {
	rc := cluster.StartRolloutsController(t)
	ns := cluster.CreateNamespace(t, "rollouts")
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ro := canaryRollout("web", map[string]any{
		"containers":                    []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}},
		"terminationGracePeriodSeconds": int64(0),
	})
	start := time.Now()
	created, err := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Create(ctx, ro, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if phase, msg := framework.RolloutPhase(created); phase == "Healthy" {
		t.Fatalf("a Rollout no controller has seen is already Healthy (%s)", msg)
	}
	first, gen := waitRolledOut(t, dyn, ns, "web", created.GetGeneration(), "")
	t.Logf("rollout 1 (create): Healthy at generation %d in %s, pod-template-hash %s", gen, time.Since(start).Round(time.Millisecond), first)

	start = time.Now()
	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"bound-token.test/revision":"2"}}}}}`)
	patched, err := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patched.GetGeneration() <= gen {
		t.Fatalf("generation %d after the template change, want more than %d", patched.GetGeneration(), gen)
	}
	second, gen2 := waitRolledOut(t, dyn, ns, "web", patched.GetGeneration(), "2")
	if second == first {
		t.Fatalf("pod-template-hash still %s after the template changed", first)
	}
	t.Logf("rollout 2 (template change, generation %d): Healthy at generation %d in %s, pod-template-hash %s", patched.GetGeneration(), gen2, time.Since(start).Round(time.Millisecond), second)

	// The old ReplicaSet is scaled down once the new one is stable.
	cluster.Eventually(t, rolloutTimeout, func() (bool, error) {
		rs, err := cluster.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "rollouts-pod-template-hash=" + first})
		if err != nil || len(rs.Items) != 1 {
			return false, fmt.Errorf("replicasets of hash %s: %d, %v", first, len(rs.Items), err)
		}
		if r := rs.Items[0].Spec.Replicas; r == nil || *r != 0 {
			return false, fmt.Errorf("old replicaset %s still wants %v replicas", rs.Items[0].Name, r)
		}
		return true, nil
	})
	if !rc.Running() {
		t.Fatalf("rollouts-controller exited; log %s", rc.Log)
	}
}

// waitRolledOut waits until the Rollout is Healthy at generation gen or
// later (framework.RolloutPhase, argo-rollouts' GetRolloutPhase: its
// status.observedGeneration is then its current generation), with
// status.updatedReplicas and status.availableReplicas 1, and its current
// ReplicaSet (label rollouts-pod-template-hash = status.currentPodHash,
// controlled by the Rollout) has one ready pod whose template carries
// annotation bound-token.test/revision = revision ("" for none). It
// returns that hash and the generation. Later, not only gen: the
// controller itself may bump the generation. It writes the
// rollout.argoproj.io/revision annotation with a whole-object Update of
// its typed Rollout (rollout/sync.go, setRolloutRevision), whose
// serialization adds "resources": {} to every container that had none
// (corev1.Container.Resources is not a pointer): seen here, generation 1
// becomes 2 on create, with the controller as the manager of
// f:resources.
func waitRolledOut(t *testing.T, dyn dynamic.Interface, ns, name string, gen int64, revision string) (string, int64) {
	t.Helper()
	var hash string
	var observed int64
	cluster.Eventually(t, rolloutTimeout, func() (bool, error) {
		ro, err := dyn.Resource(framework.RolloutsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if phase, msg := framework.RolloutPhase(ro); phase != "Healthy" {
			return false, fmt.Errorf("rollout %s/%s at generation %d is %q: %s", ns, name, ro.GetGeneration(), phase, msg)
		}
		if observed = ro.GetGeneration(); observed < gen {
			return false, fmt.Errorf("generation %d, want %d or later", observed, gen)
		}
		for _, f := range []string{"updatedReplicas", "availableReplicas"} {
			if n, _, _ := unstructured.NestedInt64(ro.Object, "status", f); n != 1 {
				return false, fmt.Errorf("status.%s %d, want 1", f, n)
			}
		}
		hash, _, _ = unstructured.NestedString(ro.Object, "status", "currentPodHash")
		if hash == "" {
			return false, fmt.Errorf("no status.currentPodHash")
		}
		rs, err := cluster.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "rollouts-pod-template-hash=" + hash})
		if err != nil || len(rs.Items) != 1 {
			return false, fmt.Errorf("replicasets of hash %s: %d, %v", hash, len(rs.Items), err)
		}
		r := rs.Items[0]
		if owner := metav1.GetControllerOf(&r); owner == nil || owner.Kind != "Rollout" || owner.UID != ro.GetUID() {
			return false, fmt.Errorf("replicaset %s is controlled by %+v, not the Rollout", r.Name, owner)
		}
		if got := r.Spec.Template.Annotations["bound-token.test/revision"]; got != revision {
			return false, fmt.Errorf("replicaset %s template revision annotation %q, want %q", r.Name, got, revision)
		}
		if r.Status.ReadyReplicas != 1 {
			return false, fmt.Errorf("replicaset %s has %d ready replicas", r.Name, r.Status.ReadyReplicas)
		}
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "rollouts-pod-template-hash=" + hash})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Spec.NodeName != "" {
					ready++
				}
			}
		}
		if ready != 1 {
			return false, fmt.Errorf("%d ready pods of hash %s, want 1", ready, hash)
		}
		return true, nil
	})
	return hash, observed
}

// canaryRollout is a Rollout of one replica with a canary strategy without
// steps, which goes to 100% at once: the new ReplicaSet is scaled up and,
// once available, made stable (argo-rollouts rollout/canary.go); its pod
// template has the labels of its selector and podSpec.
func canaryRollout(name string, podSpec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"strategy": map[string]any{"canary": map[string]any{}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     podSpec,
			},
		},
	}}
}
