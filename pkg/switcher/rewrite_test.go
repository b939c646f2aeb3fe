package switcher

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func ptr[T any](v T) *T { return &v }

func token(name, sa string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type:       corev1.SecretTypeServiceAccountToken,
		Data:       map[string][]byte{"token": []byte("t"), "ca.crt": []byte("c"), "namespace": []byte("ns")},
	}
}

func tokens(ss ...*corev1.Secret) map[string]*corev1.Secret {
	m := map[string]*corev1.Secret{}
	for _, s := range ss {
		m[s.Name] = s
	}
	return m
}

func deployment(spec corev1.PodSpec) *Workload {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	w, _ := NewWorkload(d)
	return w
}

func secretVolume(name, secret string, items []corev1.KeyToPath, mode *int32) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret, Items: items, DefaultMode: mode}}}
}

func app(mounts ...corev1.VolumeMount) []corev1.Container {
	return []corev1.Container{{Name: "app", Image: "x", VolumeMounts: mounts}}
}

// The kube-api-access layout (plugin/pkg/admission/serviceaccount/
// admission.go, TokenVolumeSource) with the given defaultMode.
func apiAccess(mode int32) *corev1.ProjectedVolumeSource {
	sec := int64(DefaultExpirationSeconds)
	return &corev1.ProjectedVolumeSource{DefaultMode: &mode, Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &sec}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
	}}
}

func mustSwitch(t *testing.T, p *Plan) {
	t.Helper()
	if !p.Switchable() || p.Template == nil {
		t.Fatalf("verdict %s %v, want switchable", p.Verdict, p.Reasons)
	}
}

func TestWholeSecretBecomesTheAPIAccessLayout(t *testing.T) {
	mount := corev1.VolumeMount{Name: "tok", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}
	w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(mount),
		Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}})
	p := MakePlan(w, tokens(token("app-token", "app")), Options{})
	mustSwitch(t, p)
	v := p.Template.Spec.Volumes[0]
	if v.Name != "tok" || v.Secret != nil {
		t.Fatalf("volume %+v: the name must stay and the secret source go", v)
	}
	if !equality.Semantic.DeepEqual(v.Projected, apiAccess(0o644)) {
		a, _ := yaml.Marshal(v.Projected)
		t.Fatalf("projected volume is not the kube-api-access layout:\n%s", a)
	}
	if !equality.Semantic.DeepEqual(p.Template.Spec.Containers[0].VolumeMounts, []corev1.VolumeMount{mount}) {
		t.Fatalf("mounts changed: %+v", p.Template.Spec.Containers[0].VolumeMounts)
	}
	if !equality.Semantic.DeepEqual(p.Secrets, []string{"app-token"}) {
		t.Fatalf("secrets %v", p.Secrets)
	}
	// The workload itself is untouched: the plan is a copy.
	if w.Template().Spec.Volumes[0].Secret == nil {
		t.Fatal("MakePlan changed the workload it was given")
	}
	if !strings.Contains(p.Diff, "--- LIVE/apps.v1.Deployment.ns.web") || !strings.Contains(p.Diff, "-    secret:") || !strings.Contains(p.Diff, "+    projected:") {
		t.Fatalf("diff:\n%s", p.Diff)
	}
}

func TestItemsAndModesFollowTheOldMapping(t *testing.T) {
	items := []corev1.KeyToPath{{Key: "token", Path: "auth/jwt"}, {Key: "namespace", Path: "ns.txt", Mode: ptr[int32](0o400)}}
	w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(),
		Volumes: []corev1.Volume{secretVolume("tok", "app-token", items, ptr[int32](0o440))}})
	p := MakePlan(w, tokens(token("app-token", "app")), Options{})
	mustSwitch(t, p)
	pv := p.Template.Spec.Volumes[0].Projected
	if *pv.DefaultMode != 0o440 {
		t.Fatalf("defaultMode %o, want 0440", *pv.DefaultMode)
	}
	if len(pv.Sources) != 2 {
		t.Fatalf("want token and namespace only (no ca.crt item), got %d sources", len(pv.Sources))
	}
	if tok := pv.Sources[0].ServiceAccountToken; tok == nil || tok.Path != "auth/jwt" {
		t.Fatalf("token source %+v, want path auth/jwt", pv.Sources[0])
	}
	ns := pv.Sources[1].DownwardAPI
	if ns == nil || ns.Items[0].Path != "ns.txt" || ns.Items[0].Mode == nil || *ns.Items[0].Mode != 0o400 {
		t.Fatalf("namespace source %+v, want ns.txt mode 0400", pv.Sources[1])
	}
	for _, s := range pv.Sources {
		if s.ConfigMap != nil {
			t.Fatal("ca.crt was not mapped, yet projected")
		}
	}
}

func TestPerItemModeOnTheTokenIsAWarning(t *testing.T) {
	items := []corev1.KeyToPath{{Key: "token", Path: "token", Mode: ptr[int32](0o400)}}
	w := deployment(corev1.PodSpec{Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "d-token", items, nil)}})
	p := MakePlan(w, tokens(token("d-token", "default")), Options{})
	mustSwitch(t, p)
	found := false
	for _, x := range p.Warnings {
		found = found || strings.Contains(x, "key token had mode 0400")
	}
	if !found {
		t.Fatalf("no warning about the token's mode: %v", p.Warnings)
	}
	// The serviceAccount defaults to "default" (the Secret's here).
	if *p.Template.Spec.Volumes[0].Projected.DefaultMode != 0o644 {
		t.Fatal("defaultMode should be the secret volume's default, 0644")
	}
}

func TestProjectedSecretSourceIsReplacedInPlace(t *testing.T) {
	other := corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}
	vol := corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr[int32](0o600), Sources: []corev1.VolumeProjection{
		other,
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-token"}, Items: []corev1.KeyToPath{{Key: "token", Path: "sa/token"}, {Key: "ca.crt", Path: "sa/ca.crt"}}}},
	}}}}
	w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{vol}})
	p := MakePlan(w, tokens(token("app-token", "app")), Options{Audience: "vault", ExpirationSeconds: 1200})
	mustSwitch(t, p)
	pv := p.Template.Spec.Volumes[0].Projected
	if len(pv.Sources) != 3 || !equality.Semantic.DeepEqual(pv.Sources[0], other) {
		t.Fatalf("sources %+v: the other source must stay first, the secret become token + ca.crt", pv.Sources)
	}
	tok := pv.Sources[1].ServiceAccountToken
	if tok == nil || tok.Path != "sa/token" || tok.Audience != "vault" || *tok.ExpirationSeconds != 1200 {
		t.Fatalf("token source %+v", pv.Sources[1])
	}
	if cm := pv.Sources[2].ConfigMap; cm == nil || cm.Name != "kube-root-ca.crt" || cm.Items[0].Path != "sa/ca.crt" {
		t.Fatalf("ca source %+v", pv.Sources[2])
	}
	if *pv.DefaultMode != 0o600 {
		t.Fatal("the projected volume's defaultMode must stay")
	}
	var aud bool
	for _, x := range p.Warnings {
		aud = aud || strings.Contains(x, `audience "vault"`)
	}
	if !aud {
		t.Fatalf("no audience warning: %v", p.Warnings)
	}
}

func refusedWith(t *testing.T, p *Plan, verdict, want string) {
	t.Helper()
	if p.Verdict != verdict || !strings.Contains(strings.Join(p.Reasons, "\n"), want) {
		t.Fatalf("verdict %s, reasons %q; want %s with %q", p.Verdict, p.Reasons, verdict, want)
	}
}

func TestRefusals(t *testing.T) {
	vol := []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}
	toks := tokens(token("app-token", "app"))
	t.Run("another service account", func(t *testing.T) {
		p := MakePlan(deployment(corev1.PodSpec{ServiceAccountName: "other", Containers: app(), Volumes: vol}), toks, Options{})
		refusedWith(t, p, VerdictRefused, "runs as other")
	})
	t.Run("env var", func(t *testing.T) {
		c := app()
		c[0].Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app-token"}, Key: "token"}}}}
		p := MakePlan(deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: c, Volumes: vol}), toks, Options{})
		refusedWith(t, p, VerdictRefused, "container app reads the token of Secret app-token through env var TOKEN")
	})
	t.Run("bare pod", func(t *testing.T) {
		w, _ := NewWorkload(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: vol}})
		p := MakePlan(w, toks, Options{})
		refusedWith(t, p, VerdictRefused, "immutable")
		if p.Template == nil || p.Diff == "" {
			t.Fatal("a refused bare Pod still shows the change to make at its source")
		}
	})
	t.Run("job", func(t *testing.T) {
		w, _ := NewWorkload(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "j"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: vol}}}})
		refusedWith(t, MakePlan(w, toks, Options{}), VerdictRefused, "immutable")
	})
	t.Run("owned", func(t *testing.T) {
		w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: vol})
		w.Object.SetOwnerReferences([]metav1.OwnerReference{{Kind: "Operand", Name: "op", Controller: ptr(true)}})
		refusedWith(t, MakePlan(w, toks, Options{}), VerdictRefused, "owned by operand/op")
	})
	t.Run("unknown key", func(t *testing.T) {
		s := token("app-token", "app")
		s.Data["extra"] = []byte("x")
		p := MakePlan(deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: vol}), tokens(s), Options{})
		refusedWith(t, p, VerdictRefused, `key "extra"`)
	})
	t.Run("system namespace", func(t *testing.T) {
		w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: vol})
		w.Object.SetNamespace("kube-addons")
		refusedWith(t, MakePlan(w, toks, Options{}), VerdictSkipped, "belongs to the platform")
		mustSwitch(t, MakePlan(w, toks, Options{IncludeSystem: true}))
	})
}

func TestManagedBy(t *testing.T) {
	cases := []struct {
		labels, annotations map[string]string
		want                string
	}{
		{labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}, want: "Helm"},
		{labels: map[string]string{"app.kubernetes.io/managed-by": "kustomize"}, want: ""},
		{annotations: map[string]string{"meta.helm.sh/release-name": "web"}, want: "Helm"},
		{annotations: map[string]string{"argocd.argoproj.io/tracking-id": "a:apps/Deployment:ns/web"}, want: "Argo CD"},
		{labels: map[string]string{"argocd.argoproj.io/instance": "web"}, want: "Argo CD"},
		{labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps"}, want: "Flux"},
		{labels: map[string]string{"helm.toolkit.fluxcd.io/name": "web"}, want: "Flux"},
		{want: ""},
	}
	vol := []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}
	for _, c := range cases {
		w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: vol})
		w.Object.SetLabels(c.labels)
		w.Object.SetAnnotations(c.annotations)
		if got, _ := ManagedBy(w.Object); got != c.want {
			t.Errorf("%v %v: managed by %q, want %q", c.labels, c.annotations, got, c.want)
		}
		p := MakePlan(w, tokens(token("app-token", "app")), Options{})
		if c.want != "" {
			refusedWith(t, p, VerdictSkipped, "managed by "+c.want)
			if p.Template == nil {
				t.Error("a managed workload still shows its change")
			}
			mustSwitch(t, MakePlan(w, tokens(token("app-token", "app")), Options{IncludeManaged: true}))
		} else {
			mustSwitch(t, p)
		}
	}
}

func TestCronJobTemplateAndPatchPath(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "report", ResourceVersion: "7"}}
	cj.Spec.JobTemplate.Spec.Template.Spec = corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}}
	w, _ := NewWorkload(cj)
	p := MakePlan(w, tokens(token("app-token", "app")), Options{})
	mustSwitch(t, p)
	got := string(volumesPatch(w, "7", p.Template.Spec.Volumes))
	if !strings.HasPrefix(got, `{"metadata":{"resourceVersion":"7"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{"volumes":[{"name":"tok","projected":`) {
		t.Fatalf("patch %s", got)
	}
	if w.Kind != "CronJob" {
		t.Fatal(w.Kind)
	}
}

func TestLifetimeWarning(t *testing.T) {
	w := deployment(corev1.PodSpec{ServiceAccountName: "app", Containers: app(), Volumes: []corev1.Volume{secretVolume("tok", "app-token", nil, nil)}})
	has := func(p *Plan) bool {
		for _, x := range p.Warnings {
			if strings.Contains(x, "only 3607s tokens are extended") {
				return true
			}
		}
		return false
	}
	if has(MakePlan(w, tokens(token("app-token", "app")), Options{})) {
		t.Fatal("the default lifetime is extended: no warning")
	}
	if !has(MakePlan(w, tokens(token("app-token", "app")), Options{ExpirationSeconds: 3600})) {
		t.Fatal("3600 s is not extended: warn")
	}
}
