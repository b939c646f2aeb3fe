package framework

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file creates the workloads (Deployments, StatefulSets, DaemonSets)
// that the suites on the workloads rig (Options.Workloads) roll out or
// switch: each selects its pods by the label app=NAME, which the pod
// template given must carry.

// Ptr is a pointer to v, for the optional fields of an API object.
func Ptr[T any](v T) *T { return &v }

// Selector selects the pods labelled app=app.
func Selector(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

// CreateDeployment creates Deployment name of replicas pods of tmpl,
// selected by app=name; mutate, when set, changes it before it is created.
func (c *Cluster) CreateDeployment(t testing.TB, ns, name string, replicas int32, tmpl corev1.PodTemplateSpec, mutate func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: Selector(name), Template: tmpl}}
	if mutate != nil {
		mutate(d)
	}
	out, err := c.Client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CreateStatefulSet creates StatefulSet name of replicas pods of tmpl,
// selected by app=name.
func (c *Cluster) CreateStatefulSet(t testing.TB, ns, name string, replicas int32, tmpl corev1.PodTemplateSpec) {
	t.Helper()
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, Selector: Selector(name), Template: tmpl}}
	if _, err := c.Client.AppsV1().StatefulSets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// CreateDaemonSet creates DaemonSet name, a pod of tmpl on each node,
// selected by app=name.
func (c *Cluster) CreateDaemonSet(t testing.TB, ns, name string, tmpl corev1.PodTemplateSpec) {
	t.Helper()
	d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{Selector: Selector(name), Template: tmpl}}
	if _, err := c.Client.AppsV1().DaemonSets(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// VolumeReader is the pod spec of the benchmarks' "web" workload: it
// mounts Secret secret as a volume at /var/run/token.
func VolumeReader(secret string) corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10",
			VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/token"}}}},
		Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}},
	}
}

// EnvReader is the pod spec of the benchmarks' "nightly" job: it reads key
// token of Secret secret into an env var.
func EnvReader(secret string) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyOnFailure,
		Containers: []corev1.Container{{Name: "nightly", Image: "registry.k8s.io/pause:3.10",
			Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "token"}}}}}},
	}
}
