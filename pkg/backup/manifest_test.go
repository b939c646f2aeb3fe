package backup

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// live is metadata as the server returns it: everything a clean manifest
// must drop besides name, namespace, labels and annotations.
func live(name string) metav1.ObjectMeta {
	ctrl := true
	return metav1.ObjectMeta{
		Name: name, Namespace: "ns", UID: types.UID("uid-" + name), ResourceVersion: "42", Generation: 3,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		Labels:            map[string]string{"app": name},
		Annotations:       map[string]string{"note": "kept"},
		OwnerReferences:   []metav1.OwnerReference{{APIVersion: "v1", Kind: "Owner", Name: "o", UID: "ou", Controller: &ctrl}},
		Finalizers:        []string{"f"},
		ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "m"}},
	}
}

// oldCleanMeta is the previous implementation's cleanMeta
// (c0237bc:pkg/legacy/backup.go).
func oldCleanMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: m.Labels, Annotations: m.Annotations}
}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "i"}},
			Volumes:    []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tok"}}}},
		},
	}
}

// oldManifests returns, for each kind the previous implementation backed
// up, a live object and the clean object its manifest function built
// explicitly (c0237bc:pkg/legacy/backup.go, manifest), with the folder its
// backupDirs map gave the kind.
func oldManifests() []struct {
	obj    runtime.Object
	clean  any
	kind   string
	folder string
} {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	sec := &corev1.Secret{ObjectMeta: live("s"), Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("t")}, Immutable: ptr.To(true)}
	sa := &corev1.ServiceAccount{ObjectMeta: live("sa"), Secrets: []corev1.ObjectReference{{Name: "s"}},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}}, AutomountServiceAccountToken: ptr.To(false)}
	dep := &appsv1.Deployment{ObjectMeta: live("d"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: sel, Template: podTemplate(), Paused: true},
		Status: appsv1.DeploymentStatus{Replicas: 2, ObservedGeneration: 3}}
	sts := &appsv1.StatefulSet{ObjectMeta: live("st"), Spec: appsv1.StatefulSetSpec{Selector: sel, Template: podTemplate(), ServiceName: "svc"},
		Status: appsv1.StatefulSetStatus{Replicas: 1}}
	ds := &appsv1.DaemonSet{ObjectMeta: live("ds"), Spec: appsv1.DaemonSetSpec{Selector: sel, Template: podTemplate()},
		Status: appsv1.DaemonSetStatus{NumberReady: 4}}
	rs := &appsv1.ReplicaSet{ObjectMeta: live("rs"), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Selector: sel, Template: podTemplate()},
		Status: appsv1.ReplicaSetStatus{Replicas: 1}}
	tpl := podTemplate()
	rc := &corev1.ReplicationController{ObjectMeta: live("rc"), Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "x"}, Template: &tpl},
		Status: corev1.ReplicationControllerStatus{Replicas: 1}}
	cj := &batchv1.CronJob{ObjectMeta: live("cj"), Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate()}}},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "j"}}}}
	return []struct {
		obj    runtime.Object
		clean  any
		kind   string
		folder string
	}{
		{sec, &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: oldCleanMeta(&sec.ObjectMeta), Type: sec.Type, Data: sec.Data, Immutable: sec.Immutable}, "Secret", "secrets"},
		{sa, &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: oldCleanMeta(&sa.ObjectMeta), Secrets: sa.Secrets,
			ImagePullSecrets: sa.ImagePullSecrets, AutomountServiceAccountToken: sa.AutomountServiceAccountToken}, "ServiceAccount", "serviceaccounts"},
		{dep, &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: oldCleanMeta(&dep.ObjectMeta), Spec: dep.Spec}, "Deployment", "deployments"},
		{sts, &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: oldCleanMeta(&sts.ObjectMeta), Spec: sts.Spec}, "StatefulSet", "statefulsets"},
		{ds, &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: oldCleanMeta(&ds.ObjectMeta), Spec: ds.Spec}, "DaemonSet", "daemonsets"},
		{rs, &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: oldCleanMeta(&rs.ObjectMeta), Spec: rs.Spec}, "ReplicaSet", "replicasets"},
		{rc, &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}, ObjectMeta: oldCleanMeta(&rc.ObjectMeta), Spec: rc.Spec}, "ReplicationController", "replicationcontrollers"},
		{cj, &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: oldCleanMeta(&cj.ObjectMeta), Spec: cj.Spec}, "CronJob", "cronjobs"},
	}
}

// TestManifestIsWhatThePreviousImplementationWrote: the kind-agnostic
// manifest of every kind backed up before is byte for byte the manifest
// the previous per-kind code wrote, so a rerun into an older folder finds
// its files as it would write them (writeNew keeps a file with the wanted
// sha256), and the record names the same kind.
func TestManifestIsWhatThePreviousImplementationWrote(t *testing.T) {
	for _, c := range oldManifests() {
		t.Run(c.kind, func(t *testing.T) {
			want, err := json.MarshalIndent(c.clean, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			r, got, err := manifest(c.obj)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("manifest differs from the previous implementation's:\ngot:\n%s\nwant:\n%s", got, want)
			}
			if r.Kind != c.kind || r.SHA256 != sha256Hex(want) || r.UID != "uid-"+r.Name || r.ResourceVersion != "42" {
				t.Errorf("record %+v", r)
			}
		})
	}
}

// TestManifestLeavesTheObjectAlone: cleaning is a copy; the caller's
// object keeps its status and metadata.
func TestManifestLeavesTheObjectAlone(t *testing.T) {
	for _, c := range oldManifests() {
		before, _ := json.Marshal(c.obj)
		if _, _, err := manifest(c.obj); err != nil {
			t.Fatal(err)
		}
		if after, _ := json.Marshal(c.obj); string(after) != string(before) {
			t.Errorf("%s: manifest changed the object it backed up", c.kind)
		}
	}
}

// TestFolderOfEachKindIsTheOldOne: every kind is filed where the previous
// implementation's backupDirs map filed it, so that its backups stay
// restorable (ParseIndex accepts a record only at that path).
func TestFolderOfEachKindIsTheOldOne(t *testing.T) {
	for _, c := range oldManifests() {
		r, _, err := manifest(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		want := c.folder + "/ns/" + r.Name + "@42.json"
		if r.File != want {
			t.Errorf("%s: file %q, want %q", c.kind, r.File, want)
		}
		if got := backupPath(c.kind, "", "ns", r.Name, "42"); got != want {
			t.Errorf("%s: backupPath %q, want %q", c.kind, got, want)
		}
		// A record written by the previous implementation parses.
		line := `{"op":"backup","kind":"` + c.kind + `","namespace":"ns","name":"` + r.Name + `","uid":"u","resourceVersion":"42","file":"` + want + `","sha256":"` + r.SHA256 + `"}` + "\n"
		ix, err := ParseIndex([]byte(`{"op":"begin","version":1,"mode":"switch"}` + "\n" + line))
		if err != nil || ix.Lookup(c.kind, "ns", r.Name) == nil {
			t.Errorf("%s: old record refused: %v", c.kind, err)
		}
	}
}

// TestSaveThenReadRoundTrips: what Save writes, Read returns checked, for
// every kind.
func TestSaveThenReadRoundTrips(t *testing.T) {
	b, err := Open(filepath.Join(t.TempDir(), "b"), ModeSwitch, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var objs []runtime.Object
	for _, c := range oldManifests() {
		objs = append(objs, c.obj)
	}
	recs, errs := b.SaveBatch(objs)
	for i, r := range recs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		_, want, _ := manifest(objs[i])
		got, err := b.Read(r)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: read back %v", r.Kind, err)
		}
		if e := b.Entry(r.Kind, r.Namespace, r.Name); e == nil || e.Backup.SHA256 != r.SHA256 {
			t.Errorf("%s: not in the index", r.Kind)
		}
	}
}

// TestManifestOfUnstructured: an object the scheme does not know is backed
// up by the kind it carries, without status, with metadata cut to name,
// namespace, labels and annotations, and its other fields as they are.
func TestManifestOfUnstructured(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{
			"name": "w", "namespace": "ns", "uid": "u1", "resourceVersion": "9", "generation": int64(2),
			"labels": map[string]any{"a": "b"}, "annotations": map[string]any{"c": "d"},
			"ownerReferences": []any{map[string]any{"kind": "X", "name": "x"}}, "managedFields": []any{map[string]any{"manager": "m"}},
			"finalizers": []any{"f"}, "creationTimestamp": "2026-01-01T00:00:00Z",
		},
		"spec":   map[string]any{"size": int64(3)},
		"status": map[string]any{"ready": true},
	}}
	r, data, err := manifest(u)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "ns", "labels": map[string]any{"a": "b"}, "annotations": map[string]any{"c": "d"}},
		"spec":     map[string]any{"size": float64(3)},
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("manifest\n%s\nwant\n%s", gj, wj)
	}
	if r.Kind != "Widget" || r.File != "widget.example.com/ns/w@9.json" || r.UID != "u1" {
		t.Errorf("record %+v", r)
	}
	if _, ok := u.Object["status"]; !ok {
		t.Error("manifest removed status from the caller's object")
	}
	// Without labels and annotations, none are written.
	delete(u.Object["metadata"].(map[string]any), "labels")
	delete(u.Object["metadata"].(map[string]any), "annotations")
	_, data, _ = manifest(u)
	if strings.Contains(string(data), "labels") || strings.Contains(string(data), "annotations") {
		t.Errorf("empty labels or annotations written:\n%s", data)
	}
}

// TestManifestRefuses: an object without a kind the scheme knows, or with
// a name, namespace or resourceVersion that would not make a path inside
// the folder, is not backed up.
func TestManifestRefuses(t *testing.T) {
	noKind := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "x", "namespace": "ns", "resourceVersion": "1"}}}
	badName := secret("ns", "../x", "1")
	noNS := secret("", "x", "1")
	badRV := secret("ns", "x", "1; rm")
	for name, obj := range map[string]runtime.Object{"no kind": noKind, "bad name": badName, "no namespace": noNS, "bad resourceVersion": badRV} {
		if r, _, err := manifest(obj); err == nil {
			t.Errorf("%s: backed up as %+v", name, r)
		}
	}
	b, err := Open(filepath.Join(t.TempDir(), "b"), ModeInvalidate, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Save(badName); err == nil {
		t.Error("Save accepted a bad name")
	}
	if entries, _ := os.ReadDir(b.Dir); len(entries) != 1 {
		t.Errorf("a refused object left files: %v", entries)
	}
}

// TestKindOfAnotherGroupIsFiledWithItsGroup: an object outside core, apps
// and batch is recorded with its group, filed as kubectl names its type
// (no plural to guess), found in the index by kind and group, and a record
// whose group and file disagree, or whose manifest is of another group,
// is refused.
func TestKindOfAnotherGroupIsFiledWithItsGroup(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "42"},
		"spec":     map[string]any{"template": map[string]any{"spec": map[string]any{"extra": "kept"}}},
		"status":   map[string]any{"phase": "Healthy"},
	}}
	r, data, err := manifest(u)
	if err != nil {
		t.Fatal(err)
	}
	if r.Group != "argoproj.io" || r.File != "rollout.argoproj.io/ns/web@42.json" || r.Type() != "Rollout.argoproj.io" {
		t.Fatalf("record %+v", r)
	}
	if !strings.Contains(string(data), `"extra": "kept"`) || strings.Contains(string(data), "Healthy") {
		t.Errorf("manifest %s", data)
	}
	line, _ := json.Marshal(r)
	ix, err := ParseIndex([]byte(`{"op":"begin","version":1,"mode":"switch"}` + "\n" + string(line) + "\n"))
	if err != nil || ix.Lookup(TypeKey("Rollout", "argoproj.io"), "ns", "web") == nil || ix.Lookup("Rollout", "ns", "web") != nil {
		t.Fatalf("index: %v", err)
	}
	for _, bad := range []func(*Record){
		func(r *Record) { r.Group = "" },
		func(r *Record) { r.Group = "apps" },
		func(r *Record) { r.Group = "other.io" },
	} {
		c := *r
		bad(&c)
		line, _ := json.Marshal(c)
		if _, err := ParseIndex([]byte(`{"op":"begin","version":1,"mode":"switch"}` + "\n" + string(line) + "\n")); err == nil {
			t.Errorf("record %+v accepted", c)
		}
	}
	// A Deployment keeps its old folder and no group.
	d, _, err := manifest(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", ResourceVersion: "7"}})
	if err != nil || d.Group != "" || d.File != "deployments/ns/web@7.json" {
		t.Errorf("deployment record %+v, %v", d, err)
	}
}
