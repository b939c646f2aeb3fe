package backup

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// manifest renders a re-appliable object: no uid, resourceVersion,
// managedFields, owner references or status. Typed objects (client-go's)
// are named by client-go's scheme; others must carry their kind.
func manifest(obj runtime.Object) (*Record, []byte, error) {
	gvk, err := kindOf(obj)
	if err != nil {
		return nil, nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot back up a %T: %v", obj, err)
	}
	r := &Record{Op: OpBackup, Kind: gvk.Kind, Group: RecordGroup(gvk.Group), Namespace: m.GetNamespace(), Name: m.GetName(), UID: string(m.GetUID()), ResourceVersion: m.GetResourceVersion()}
	if !ValidName(r.Namespace) || !ValidName(r.Name) || !validRV(r.ResourceVersion) {
		return nil, nil, fmt.Errorf("cannot back up %s %s/%s: unexpected name or resourceVersion", r.Kind, r.Namespace, r.Name)
	}
	clean, err := cleaned(obj, gvk, m)
	if err != nil {
		return nil, nil, err
	}
	// JSON, which kubectl applies as it is: rendering YAML costs several
	// times more CPU, which on a small control plane host slows the
	// apiserver the run is waiting for.
	data, err := json.MarshalIndent(clean, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	data = append(data, '\n')
	r.SHA256 = sha256Hex(data)
	r.File = backupPath(r.Kind, r.Group, r.Namespace, r.Name, r.ResourceVersion)
	return r, data, nil
}

func kindOf(obj runtime.Object) (schema.GroupVersionKind, error) {
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
		return gvk, nil
	}
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return schema.GroupVersionKind{}, fmt.Errorf("cannot back up a %T: its kind is unknown", obj)
	}
	return gvks[0], nil
}

// cleaned is a shallow copy of obj with its kind set, its metadata cut to
// name, namespace, labels and annotations, and no status.
func cleaned(obj runtime.Object, gvk schema.GroupVersionKind, m metav1.Object) (any, error) {
	cm := cleanMeta(m)
	if u, ok := obj.(*unstructured.Unstructured); ok {
		out := make(map[string]any, len(u.Object))
		for k, v := range u.Object {
			if k != "status" && k != "metadata" {
				out[k] = v
			}
		}
		md := map[string]any{"name": cm.Name}
		if cm.Namespace != "" {
			md["namespace"] = cm.Namespace
		}
		if len(cm.Labels) > 0 {
			md["labels"] = cm.Labels
		}
		if len(cm.Annotations) > 0 {
			md["annotations"] = cm.Annotations
		}
		out["metadata"] = md
		out["apiVersion"], out["kind"] = gvk.GroupVersion().String(), gvk.Kind
		return out, nil
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("cannot back up a %T", obj)
	}
	c := reflect.New(v.Elem().Type()).Elem()
	c.Set(v.Elem())
	tm, om := c.FieldByName("TypeMeta"), c.FieldByName("ObjectMeta")
	if !tm.IsValid() || !om.IsValid() {
		return nil, fmt.Errorf("cannot back up a %T", obj)
	}
	tm.Set(reflect.ValueOf(metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind}))
	om.Set(reflect.ValueOf(cm))
	if st := c.FieldByName("Status"); st.IsValid() {
		st.Set(reflect.Zero(st.Type()))
	}
	return c.Addr().Interface(), nil
}

func cleanMeta(m metav1.Object) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), Labels: m.GetLabels(), Annotations: m.GetAnnotations()}
}

// folderOf is the folder of a kind inside a backup. For core, apps and
// batch it is the folder old backups have: the lowercased kind plus "s"
// (secrets, serviceaccounts, deployments, cronjobs, ...). Any other kind's
// is named as kubectl names its type, kind and group
// ("rollout.argoproj.io"), which needs no plural and cannot collide.
func folderOf(kind, group string) string {
	if group != "" {
		return strings.ToLower(kind) + "." + group
	}
	return strings.ToLower(kind) + "s"
}

// validKind accepts a Kind as the API names them (Deployment): it keeps a
// record's folder inside the backup.
func validKind(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
