package workload

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVisitSecretNames: every Secret reference k8s.io/kubernetes
// pkg/api/v1/pod/util.go VisitPodSecretNames visits, in its order
// (imagePullSecrets; envFrom then env of init, regular and ephemeral
// containers; then volumes), skipping empty names, and of a volume only
// its first set source, as upstream's switch does.
func TestVisitSecretNames(t *testing.T) {
	ref := func(n string) *corev1.LocalObjectReference { return &corev1.LocalObjectReference{Name: n} }
	envRef := func(n string) []corev1.EnvVar {
		return []corev1.EnvVar{{Name: "plain", Value: "v"}, {ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: *ref("cm")}}},
			{ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: *ref(n)}}}}
	}
	from := func(n string) []corev1.EnvFromSource {
		return []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: *ref("cm")}}, {SecretRef: &corev1.SecretEnvSource{LocalObjectReference: *ref(n)}}}
	}
	spec := &corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}, {Name: ""}},
		Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol"}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: *ref("cm")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: *ref("proj")}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: *ref("proj2")}}}}}},
			{VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: ref("csi")}}},
			{VolumeSource: corev1.VolumeSource{CephFS: &corev1.CephFSVolumeSource{SecretRef: ref("ceph")}}},
			{VolumeSource: corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{SecretRef: ref("rbd")}}},
			{VolumeSource: corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{SecretRef: ref("iscsi")}}},
			{VolumeSource: corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{SecretRef: ref("flex")}}},
			{VolumeSource: corev1.VolumeSource{AzureFile: &corev1.AzureFileVolumeSource{SecretName: "azure"}}},
			{VolumeSource: corev1.VolumeSource{Cinder: &corev1.CinderVolumeSource{SecretRef: ref("cinder")}}},
			{VolumeSource: corev1.VolumeSource{ScaleIO: &corev1.ScaleIOVolumeSource{SecretRef: ref("scaleio")}}},
			{VolumeSource: corev1.VolumeSource{StorageOS: &corev1.StorageOSVolumeSource{SecretRef: ref("storageos")}}},
			// Sources without a Secret.
			{VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d"}}},
			{VolumeSource: corev1.VolumeSource{CephFS: &corev1.CephFSVolumeSource{}}},
			{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: *ref("cm")}}},
			// Two sources set: upstream's switch takes the first case
			// (Projected before Secret).
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "shadowed"},
				Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: *ref("first")}}}}}},
		},
		InitContainers: []corev1.Container{{Env: envRef("init-env"), EnvFrom: from("init-from")}},
		Containers:     []corev1.Container{{Env: envRef("env"), EnvFrom: from("from")}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Env: envRef("eph"),
		}}},
	}
	var got []string
	VisitSecretNames(spec, func(name, via string) { got = append(got, name+":"+via) })
	want := []string{"pull:imagePullSecrets",
		"init-from:envFrom", "init-env:env", "from:envFrom", "env:env", "eph:env",
		"vol:volume", "proj:projected", "proj2:projected", "csi:csi", "ceph:cephfs", "rbd:rbd", "iscsi:iscsi", "flex:flexVolume",
		"azure:azureFile", "cinder:cinder", "scaleio:scaleIO", "storageos:storageos", "first:projected"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("visited\n%v\nwant\n%v", got, want)
	}
}

func TestTemplateSum(t *testing.T) {
	tpl := func() *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1", "b": "2"}, Annotations: map[string]string{"x": "y"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
	}
	sum := TemplateSum(tpl())
	if len(sum) != 64 || strings.ToLower(sum) != sum {
		t.Fatalf("sum %q is not 64 lowercase hex digits", sum)
	}
	// Stable: the same template sums the same, whatever map order.
	for i := 0; i < 20; i++ {
		if TemplateSum(tpl()) != sum {
			t.Fatal("sum of the same template changed")
		}
	}
	// Sensitive: any change of spec or metadata changes it.
	for name, change := range map[string]func(*corev1.PodTemplateSpec){
		"image":      func(p *corev1.PodTemplateSpec) { p.Spec.Containers[0].Image = "j" },
		"label":      func(p *corev1.PodTemplateSpec) { p.Labels["a"] = "2" },
		"annotation": func(p *corev1.PodTemplateSpec) { p.Annotations["z"] = "" },
		"volume": func(p *corev1.PodTemplateSpec) {
			p.Spec.Volumes = []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}
		},
		"automount": func(p *corev1.PodTemplateSpec) { f := false; p.Spec.AutomountServiceAccountToken = &f },
	} {
		p := tpl()
		change(p)
		if TemplateSum(p) == sum {
			t.Errorf("%s: sum unchanged", name)
		}
	}
}
