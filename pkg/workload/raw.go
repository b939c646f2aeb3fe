package workload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// secretFields is the part of a pod spec that can name a Secret, all that
// VisitSecretNames reads: decoding only it from an object's JSON costs a
// fraction of decoding the object into generic maps and converting each
// pod spec (what PodSpecs does), which over tens of thousands of objects
// of other APIs was most of an audit's client time.
type secretFields struct {
	ImagePullSecrets    []corev1.LocalObjectReference `json:"imagePullSecrets"`
	InitContainers      []containerSecrets            `json:"initContainers"`
	Containers          []containerSecrets            `json:"containers"`
	EphemeralContainers []containerSecrets            `json:"ephemeralContainers"`
	Volumes             []corev1.Volume               `json:"volumes"`
}

type containerSecrets struct {
	Env     []corev1.EnvVar        `json:"env"`
	EnvFrom []corev1.EnvFromSource `json:"envFrom"`
}

// podSpec is a pod spec holding only these fields.
func (s *secretFields) podSpec() *corev1.PodSpec {
	ps := &corev1.PodSpec{ImagePullSecrets: s.ImagePullSecrets, Volumes: s.Volumes}
	for _, c := range s.InitContainers {
		ps.InitContainers = append(ps.InitContainers, corev1.Container{Env: c.Env, EnvFrom: c.EnvFrom})
	}
	for _, c := range s.Containers {
		ps.Containers = append(ps.Containers, corev1.Container{Env: c.Env, EnvFrom: c.EnvFrom})
	}
	for _, c := range s.EphemeralContainers {
		ps.EphemeralContainers = append(ps.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Env: c.Env, EnvFrom: c.EnvFrom}})
	}
	return ps
}

// PodSpecsJSON is PodSpecs over an object's JSON: it decodes only the
// members on the way down p and, of each pod spec, only what can name a
// Secret (secretFields). fn gets a pod spec holding those fields alone.
func PodSpecsJSON(obj json.RawMessage, p Path, fn func(path string, spec *corev1.PodSpec) error) error {
	return walkJSON(obj, p, "", fn)
}

var null = []byte("null")

func walkJSON(v json.RawMessage, p Path, at string, fn func(string, *corev1.PodSpec) error) error {
	if len(v) == 0 || bytes.Equal(v, null) {
		return nil
	}
	if len(p) == 0 {
		var s secretFields
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("%s: not a pod spec: %w", root(at), err)
		}
		return fn(root(at), s.podSpec())
	}
	switch s := p[0]; s.Kind {
	case FieldStep:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("%s: not an object: %w", root(at), err)
		}
		return walkJSON(m[s.Field], p[1:], at+member(s.Field), fn)
	case ItemsStep:
		var l []json.RawMessage
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("%s: not an array: %w", root(at), err)
		}
		for i, item := range l {
			if err := walkJSON(item, p[1:], at+"["+strconv.Itoa(i)+"]", fn); err != nil {
				return err
			}
		}
	case ValuesStep:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("%s: not a map: %w", root(at), err)
		}
		for _, k := range sortedKeys(m) {
			if err := walkJSON(m[k], p[1:], at+member(k), fn); err != nil {
				return err
			}
		}
	}
	return nil
}
