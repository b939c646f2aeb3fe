// Package reportsfake is the OpenReports client for tests: the generated
// fake of github.com/openreports/reports-api with server-side apply taken
// as create or replace. The generated NewClientset's type converter does
// not know the module's own types ("no type found matching ...Report"),
// and NewSimpleClientset answers an apply of a missing object with not
// found. It must not import anything of this tool's but its tests' needs.
package reportsfake

import (
	"encoding/json"

	v1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/openreports/reports-api/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// NewClientset returns the fake with apply.
func NewClientset() *fake.Clientset {
	c := fake.NewSimpleClientset()
	c.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		var obj runtime.Object = &v1alpha1.Report{}
		if pa.GetResource().Resource == "clusterreports" {
			obj = &v1alpha1.ClusterReport{}
		}
		if err := json.Unmarshal(pa.GetPatch(), obj); err != nil {
			return true, nil, err
		}
		gvr, ns := pa.GetResource(), pa.GetNamespace()
		err := c.Tracker().Create(gvr, obj, ns)
		if apierrors.IsAlreadyExists(err) {
			err = c.Tracker().Update(gvr, obj, ns)
		}
		return true, obj, err
	})
	return c
}
