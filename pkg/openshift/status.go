package openshift

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// AuthenticationGVR holds spec.serviceAccountIssuer (object "cluster").
	AuthenticationGVR = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "authentications"}
	// KubeAPIServerGVR is the kube-apiserver operator's object "cluster".
	KubeAPIServerGVR = schema.GroupVersionResource{Group: "operator.openshift.io", Version: "v1", Resource: "kubeapiservers"}
)

// ClusterName is the name of the singleton Authentication and KubeAPIServer objects.
const ClusterName = "cluster"

// DefaultIssuer is what an empty spec.serviceAccountIssuer means.
const DefaultIssuer = "https://kubernetes.default.svc"

// MaxTrustedIssuers is the operator's limit on status.serviceAccountIssuers.
const MaxTrustedIssuers = 10

// Condition types and reasons the operator writes.
const (
	CondNodeInstallerProgressing = "NodeInstallerProgressing"
	CondNodeInstallerDegraded    = "NodeInstallerDegraded"
	ReasonAllNodesAtLatest       = "AllNodesAtLatestRevision"
	ReasonInstallerPodFailed     = "InstallerPodFailed"
)

// KubeAPIServerStatus is the part of kubeapiservers.operator.openshift.io's
// status that a rollout is judged by (field names as in openshift/api).
type KubeAPIServerStatus struct {
	LatestAvailableRevision int32                  `json:"latestAvailableRevision,omitempty"`
	NodeStatuses            []NodeStatus           `json:"nodeStatuses,omitempty"`
	Conditions              []Condition            `json:"conditions,omitempty"`
	ServiceAccountIssuers   []ServiceAccountIssuer `json:"serviceAccountIssuers,omitempty"`
}

// NodeStatus is one control-plane node's static-pod install state.
type NodeStatus struct {
	NodeName                 string   `json:"nodeName"`
	CurrentRevision          int32    `json:"currentRevision,omitempty"`
	TargetRevision           int32    `json:"targetRevision,omitempty"`
	LastFailedRevision       int32    `json:"lastFailedRevision,omitempty"`
	LastFailedTime           string   `json:"lastFailedTime,omitempty"`
	LastFailedReason         string   `json:"lastFailedReason,omitempty"`
	LastFailedCount          int      `json:"lastFailedCount,omitempty"`
	LastFailedRevisionErrors []string `json:"lastFailedRevisionErrors,omitempty"`
}

// Condition is an operator condition.
type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
	LastTransitionTime string `json:"lastTransitionTime,omitempty"`
}

// ServiceAccountIssuer is a trusted issuer; the active one has no expiry.
type ServiceAccountIssuer struct {
	Name           string `json:"name"`
	ExpirationTime string `json:"expirationTime,omitempty"`
}

// Expires parses ExpirationTime; ok is false for the active issuer.
func (i ServiceAccountIssuer) Expires() (t time.Time, ok bool) {
	if i.ExpirationTime == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, i.ExpirationTime)
	return t, err == nil
}

// StatusOf decodes the status of a KubeAPIServer object.
func StatusOf(obj *unstructured.Unstructured) (*KubeAPIServerStatus, error) {
	st := &KubeAPIServerStatus{}
	raw, ok := obj.Object["status"].(map[string]any)
	if !ok {
		return st, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, st); err != nil {
		return nil, fmt.Errorf("kubeapiservers.operator.openshift.io/%s has a status this tool cannot read: %w", obj.GetName(), err)
	}
	return st, nil
}

// Condition returns the condition of that type, or nil.
func (s *KubeAPIServerStatus) Condition(typ string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}

// IssuerOf returns spec.serviceAccountIssuer of an Authentication object
// ("" when unset, which means DefaultIssuer).
func IssuerOf(auth *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(auth.Object, "spec", "serviceAccountIssuer")
	return s
}

// EffectiveIssuer maps "" to DefaultIssuer.
func EffectiveIssuer(s string) string {
	if s == "" {
		return DefaultIssuer
	}
	return s
}
