package workload

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// everySecretRef is a pod spec naming a Secret in every way
// VisitSecretNames knows.
func everySecretRef() corev1.PodSpec {
	lref := func(n string) *corev1.LocalObjectReference { return &corev1.LocalObjectReference{Name: n} }
	env := func(n string) []corev1.EnvVar {
		return []corev1.EnvVar{{Name: "E", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: n}, Key: "k"}}}}
	}
	from := func(n string) []corev1.EnvFromSource {
		return []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: n}}}}
	}
	vol := func(n string, s corev1.VolumeSource) corev1.Volume { return corev1.Volume{Name: n, VolumeSource: s} }
	return corev1.PodSpec{
		ImagePullSecrets:    []corev1.LocalObjectReference{{Name: "pull"}},
		InitContainers:      []corev1.Container{{Name: "i", Image: "i", Env: env("init-env"), EnvFrom: from("init-from")}},
		Containers:          []corev1.Container{{Name: "c", Image: "c", Env: env("env"), EnvFrom: from("from")}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "e", Env: env("eph-env"), EnvFrom: from("eph-from")}}},
		Volumes: []corev1.Volume{
			vol("a", corev1.VolumeSource{AzureFile: &corev1.AzureFileVolumeSource{SecretName: "azure"}}),
			vol("b", corev1.VolumeSource{CephFS: &corev1.CephFSVolumeSource{SecretRef: lref("ceph")}}),
			vol("c", corev1.VolumeSource{Cinder: &corev1.CinderVolumeSource{SecretRef: lref("cinder")}}),
			vol("d", corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{SecretRef: lref("flex")}}),
			vol("e", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projected"}}}}}}),
			vol("f", corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{SecretRef: lref("rbd")}}),
			vol("g", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "secret"}}),
			vol("h", corev1.VolumeSource{ScaleIO: &corev1.ScaleIOVolumeSource{SecretRef: lref("scaleio")}}),
			vol("i", corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{SecretRef: lref("iscsi")}}),
			vol("j", corev1.VolumeSource{StorageOS: &corev1.StorageOSVolumeSource{SecretRef: lref("storageos")}}),
			vol("k", corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: lref("csi")}}),
		},
	}
}

// TestPodSpecsJSONFindsWhatPodSpecsFinds: over an object with pod specs in
// a field, in array items and in map values, the JSON walk visits the same
// Secrets, the same way, at the same paths as the walk over decoded data.
func TestPodSpecsJSONFindsWhatPodSpecsFinds(t *testing.T) {
	ps := everySecretRef()
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ps)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{"spec": map[string]any{
		"template": map[string]any{"spec": spec},
		"list":     []any{map[string]any{"template": map[string]any{"spec": spec}}, map[string]any{}},
		"byRole":   map[string]any{"worker": map[string]any{"template": map[string]any{"spec": spec}}, "ps": nil},
	}}
	raw, _ := json.Marshal(obj)
	paths := []Path{
		{{Kind: FieldStep, Field: "spec"}, {Kind: FieldStep, Field: "template"}, {Kind: FieldStep, Field: "spec"}},
		{{Kind: FieldStep, Field: "spec"}, {Kind: FieldStep, Field: "list"}, {Kind: ItemsStep}, {Kind: FieldStep, Field: "template"}, {Kind: FieldStep, Field: "spec"}},
		{{Kind: FieldStep, Field: "spec"}, {Kind: FieldStep, Field: "byRole"}, {Kind: ValuesStep}, {Kind: FieldStep, Field: "template"}, {Kind: FieldStep, Field: "spec"}},
	}
	for _, p := range paths {
		var want, got []string
		collect := func(out *[]string) func(string, *corev1.PodSpec) error {
			return func(at string, s *corev1.PodSpec) error {
				VisitSecretNames(s, func(n, via string) { *out = append(*out, fmt.Sprintf("%s %s %s", at, n, via)) })
				return nil
			}
		}
		if err := PodSpecs(obj, p, collect(&want)); err != nil {
			t.Fatal(err)
		}
		if err := PodSpecsJSON(raw, p, collect(&got)); err != nil {
			t.Fatal(err)
		}
		if len(want) < 17 || !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", p, got, want)
		}
	}
	// The wrong shape is an error, as for PodSpecs.
	if err := PodSpecsJSON([]byte(`{"spec":{"template":{"spec":{"volumes":{}}}}}`), paths[0], collect0); err == nil {
		t.Error("volumes as an object was read")
	}
	if err := PodSpecsJSON([]byte(`{"spec":{"list":{}}}`), paths[1], collect0); err == nil {
		t.Error("an object where an array belongs was read")
	}
}

func collect0(string, *corev1.PodSpec) error { return nil }
