package legacy

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0, "45m": 45 * time.Minute,
	} {
		if got, err := ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "x90d", "90dd", "1.5d", "90days", "-3h"} {
		if _, err := ParseAge(in); err == nil && in != "" {
			t.Errorf("ParseAge(%q) accepted", in)
		}
	}
}

func secret(ns, name, rv string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: rv,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{"token": []byte("secret-token-value")},
	}
}
