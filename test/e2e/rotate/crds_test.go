package rotate

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bound-token/kubectl-bound-token/pkg/openshift"
	"github.com/bound-token/kubectl-bound-token/test/sim/kasoperator"
)

// The OpenShift CRDs in this cluster are the real ones from openshift/api
// (modcache.OpenShiftAPIVersion), not stand-ins that take anything: the
// KubeAPIServer status rules the simulated operator obeys are enforced by
// the apiserver, and Authentication's spec is checked against its schema.
func TestRealOpenShiftCRDsEnforceTheirRules(t *testing.T) {
	op := openShift(t, func(o *kasoperator.Operator) { o.Stuck = true })
	ctx := context.Background()
	// rawWrite writes a status change outside the simulator (whose writes
	// must all pass) and returns the apiserver's answer.
	rawWrite := func(fn func(*openshift.KubeAPIServerStatus)) error {
		obj, err := op.KAS().Get(ctx, openshift.ClusterName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := openshift.StatusOf(obj)
		if err != nil {
			t.Fatal(err)
		}
		fn(st)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
		if err != nil {
			t.Fatal(err)
		}
		obj.Object["status"] = m
		_, err = op.KAS().UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		return err
	}
	// The settled state: every node at 7, no targetRevision.
	for _, c := range []struct {
		name, message string
		fn            func(*openshift.KubeAPIServerStatus)
	}{
		{"a new node entry with currentRevision", "currentRevision can not be set on creation of a nodeStatus",
			func(st *openshift.KubeAPIServerStatus) {
				st.NodeStatuses = append(st.NodeStatuses, openshift.NodeStatus{NodeName: "master-3", CurrentRevision: 7})
			}},
		{"a new node entry with targetRevision", "targetRevision can not be set on creation of a nodeStatus",
			func(st *openshift.KubeAPIServerStatus) {
				st.NodeStatuses = append(st.NodeStatuses, openshift.NodeStatus{NodeName: "master-3", TargetRevision: 7})
			}},
		// Releases word the rejected value differently (1.34: "integer",
		// the type; 1.37: 6, the value): the field and the rule's
		// message are what both say.
		{"latestAvailableRevision going down", "status.latestAvailableRevision: Invalid value: * must only increase",
			func(st *openshift.KubeAPIServerStatus) { st.LatestAvailableRevision = 6 }},
		{"currentRevision going down", "currentRevision: Invalid value: * must only increase",
			func(st *openshift.KubeAPIServerStatus) { st.NodeStatuses[1].CurrentRevision = 6 }},
		{"currentRevision unset", "cannot be unset once set",
			func(st *openshift.KubeAPIServerStatus) { st.NodeStatuses[1].CurrentRevision = 0 }},
		{"two nodes with a targetRevision", "no more than 1 node status may have a nonzero targetRevision",
			func(st *openshift.KubeAPIServerStatus) {
				st.LatestAvailableRevision = 8
				st.NodeStatuses[0].TargetRevision, st.NodeStatuses[1].TargetRevision = 8, 8
			}},
	} {
		err := rawWrite(c.fn)
		if !apierrors.IsInvalid(err) || !containsInOrder(err.Error(), strings.Split(c.message, " * ")...) {
			t.Errorf("%s: got %v, want Invalid with %q", c.name, err, c.message)
		}
	}
	if st := kasStatus(t); st.LatestAvailableRevision != 7 || len(st.NodeStatuses) != 3 {
		t.Fatalf("a refused write changed the status: %+v", st)
	}
	// What the operator does instead passes: the node controller adds the
	// bare entry, the installer sets its targetRevision in a later write.
	if err := rawWrite(func(st *openshift.KubeAPIServerStatus) {
		st.NodeStatuses = append(st.NodeStatuses, openshift.NodeStatus{NodeName: "master-3"})
	}); err != nil {
		t.Fatalf("a bare new node entry: %v", err)
	}
	if err := rawWrite(func(st *openshift.KubeAPIServerStatus) { st.NodeStatuses[3].TargetRevision = 7 }); err != nil {
		t.Fatalf("targetRevision on an existing entry: %v", err)
	}

	// Authentication: spec.type is an enum in the real schema.
	patch := []byte(`{"spec":{"type":"Bogus"}}`)
	_, err := dyn.Resource(openshift.AuthenticationGVR).Patch(ctx, openshift.ClusterName, types.MergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.type: Unsupported value: \"Bogus\"") {
		t.Errorf("spec.type Bogus: got %v, want Invalid", err)
	}
}

// containsInOrder says s holds each part, one after another.
func containsInOrder(s string, parts ...string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
