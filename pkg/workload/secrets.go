package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
)

// VisitSecretNames calls fn with every Secret a pod spec names and how it
// names it. It visits what k8s.io/kubernetes pkg/api/v1/pod/util.go
// VisitPodSecretNames visits, in its order: imagePullSecrets, env and
// envFrom of every container (init, regular, ephemeral), then each
// volume's first set source (a switch, as upstream).
func VisitSecretNames(spec *corev1.PodSpec, fn func(name, via string)) {
	visit := func(name, via string) {
		if name != "" {
			fn(name, via)
		}
	}
	for _, r := range spec.ImagePullSecrets {
		visit(r.Name, "imagePullSecrets")
	}
	containers := func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range from {
			if e.SecretRef != nil {
				visit(e.SecretRef.Name, "envFrom")
			}
		}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				visit(e.ValueFrom.SecretKeyRef.Name, "env")
			}
		}
	}
	for _, c := range spec.InitContainers {
		containers(c.Env, c.EnvFrom)
	}
	for _, c := range spec.Containers {
		containers(c.Env, c.EnvFrom)
	}
	for _, c := range spec.EphemeralContainers {
		containers(c.Env, c.EnvFrom)
	}
	for i := range spec.Volumes {
		s := &spec.Volumes[i].VolumeSource
		switch {
		case s.AzureFile != nil:
			visit(s.AzureFile.SecretName, "azureFile")
		case s.CephFS != nil:
			if s.CephFS.SecretRef != nil {
				visit(s.CephFS.SecretRef.Name, "cephfs")
			}
		case s.Cinder != nil:
			if s.Cinder.SecretRef != nil {
				visit(s.Cinder.SecretRef.Name, "cinder")
			}
		case s.FlexVolume != nil:
			if s.FlexVolume.SecretRef != nil {
				visit(s.FlexVolume.SecretRef.Name, "flexVolume")
			}
		case s.Projected != nil:
			for _, p := range s.Projected.Sources {
				if p.Secret != nil {
					visit(p.Secret.Name, "projected")
				}
			}
		case s.RBD != nil:
			if s.RBD.SecretRef != nil {
				visit(s.RBD.SecretRef.Name, "rbd")
			}
		case s.Secret != nil:
			visit(s.Secret.SecretName, "volume")
		case s.ScaleIO != nil:
			if s.ScaleIO.SecretRef != nil {
				visit(s.ScaleIO.SecretRef.Name, "scaleIO")
			}
		case s.ISCSI != nil:
			if s.ISCSI.SecretRef != nil {
				visit(s.ISCSI.SecretRef.Name, "iscsi")
			}
		case s.StorageOS != nil:
			if s.StorageOS.SecretRef != nil {
				visit(s.StorageOS.SecretRef.Name, "storageos")
			}
		case s.CSI != nil:
			if s.CSI.NodePublishSecretRef != nil {
				visit(s.CSI.NodePublishSecretRef.Name, "csi")
			}
		}
	}
}

// TemplateSum is the sha256 of a pod template as JSON: what a switch
// record holds, so restore can tell the template it wrote from one changed
// since.
func TemplateSum(t *corev1.PodTemplateSpec) string {
	data, _ := json.Marshal(t)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
