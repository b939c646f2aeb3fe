// Package switcher moves workloads that read legacy ServiceAccount token
// Secrets onto projected, bound tokens: it finds them, plans the rewrite of
// each pod template (or says why it must not), applies it with a backup and
// a resourceVersion precondition, follows the rollouts and puts templates
// back from a backup. It is usable without cobra; pkg/cmd/switch.go is the
// command.
//
// It must not import pkg/legacy, pkg/restart, pkg/guard, pkg/fleet or
// pkg/cmd: what it needs to know of legacy token Secrets (which ones
// nothing reads any more, which ones block a restore) comes in as
// functions from the command layer.
package switcher

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
	"github.com/bound-token/kubectl-bound-token/pkg/workload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Token lifetimes.
const (
	// DefaultExpirationSeconds is the lifetime of the automatic
	// kube-api-access volume (plugin/pkg/admission/serviceaccount/
	// admission.go, TokenVolumeSource: serviceaccount.
	// WarnOnlyBoundTokenExpirationSeconds = 60*60 + 7, pkg/serviceaccount/
	// claims.go). Only a TokenRequest of exactly this lifetime, for a pod,
	// with audiences within the API's, is extended by kube-apiserver
	// (--service-account-extend-token-expiration, default true;
	// pkg/registry/core/serviceaccount/storage/token.go, TokenREST.Create
	// and isKubeAudiences) to a year, with late use recorded as stale.
	DefaultExpirationSeconds = 60*60 + 7
	// MinExpirationSeconds is the API's minimum (pkg/apis/core/validation/
	// validation.go, validateProjectionSources: "may not specify a duration
	// less than 10 minutes").
	MinExpirationSeconds = 10 * 60
	// MaxExpirationSeconds is the API's maximum (same function: "larger
	// than 2^32 seconds").
	MaxExpirationSeconds = 1 << 32
)

// The ConfigMap root-ca-cert-publisher writes into every namespace
// (pkg/controller/certificates/rootcacertpublisher/publisher.go,
// RootCACertConfigMapName), holding the same --root-ca-file that the token
// controller copies into legacy token Secrets as ca.crt.
const rootCAConfigMap = "kube-root-ca.crt"

// Keys of a legacy token Secret (k8s.io/api/core/v1
// ServiceAccountTokenKey, ServiceAccountRootCAKey,
// ServiceAccountNamespaceKey), filled by the token controller.
var tokenKeys = []string{corev1.ServiceAccountTokenKey, corev1.ServiceAccountRootCAKey, corev1.ServiceAccountNamespaceKey}

// Verdicts of a plan.
const (
	VerdictSwitchable = "switchable"
	VerdictRefused    = "refused"
	VerdictSkipped    = "skipped"
)

// Managers whose tools would put a rewritten template back: the label or
// annotation each writes on what it manages.
var managers = []struct{ key, value, name string }{
	{"app.kubernetes.io/managed-by", "Helm", "Helm"},
	{"meta.helm.sh/release-name", "", "Helm"},
	{"argocd.argoproj.io/tracking-id", "", "Argo CD"},
	{"argocd.argoproj.io/instance", "", "Argo CD"},
	{"kustomize.toolkit.fluxcd.io/name", "", "Flux"},
	{"helm.toolkit.fluxcd.io/name", "", "Flux"},
}

// ManagedBy names the tool that manages an object (Helm, Argo CD, Flux)
// and the key that says so, or "".
func ManagedBy(m metav1.Object) (string, string) {
	for _, mg := range managers {
		for _, set := range []map[string]string{m.GetLabels(), m.GetAnnotations()} {
			if v, ok := set[mg.key]; ok && (mg.value == "" || v == mg.value) {
				return mg.name, mg.key
			}
		}
	}
	return "", ""
}

// Options shape the rewrite and what is refused.
type Options struct {
	// ExpirationSeconds of the projected token; 0 means the default.
	ExpirationSeconds int64
	// Audience of the projected token; "" is the API's.
	Audience       string
	IncludeManaged bool
	IncludeSystem  bool
}

func (o Options) seconds() int64 {
	if o.ExpirationSeconds == 0 {
		return DefaultExpirationSeconds
	}
	return o.ExpirationSeconds
}

// Plan is what switch would do with one workload.
type Plan struct {
	Kind string `json:"kind"`
	// Group is set outside the core, apps and batch groups.
	Group     string `json:"group,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Secrets are the legacy token Secrets the template reads.
	Secrets  []string `json:"secrets"`
	Verdict  string   `json:"verdict"`
	Reasons  []string `json:"reasons,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Diff is the unified diff of the pod template, as kubectl diff shows
	// it; empty when no rewrite could be made.
	Diff string `json:"diff,omitempty"`

	// Workload is the object as read; Template its new pod template (nil
	// when the template needs more than the rewrite: a reader that
	// cannot move).
	Workload *Workload               `json:"-"`
	Template *corev1.PodTemplateSpec `json:"-"`
	// Held lists the skips a caller may lift (Options.IncludeSystem,
	// Options.IncludeManaged), each with the index of its reason, so that
	// a command can add how to lift it in its own words.
	Held []Hold `json:"-"`
}

// Hold is one skip a caller may lift: Rule is HoldSystem or HoldManaged,
// Reason the index in Plan.Reasons that says why.
type Hold struct {
	Rule   string
	Reason int
}

const (
	HoldSystem  = "system"  // lifted by Options.IncludeSystem
	HoldManaged = "managed" // lifted by Options.IncludeManaged
)

func (p *Plan) hold(rule, format string, args ...any) {
	p.Verdict = VerdictSkipped
	p.Held = append(p.Held, Hold{Rule: rule, Reason: len(p.Reasons)})
	p.Reasons = append(p.Reasons, fmt.Sprintf(format, args...))
}

// Switchable reports whether the plan may be applied.
func (p *Plan) Switchable() bool { return p.Verdict == VerdictSwitchable }

func (p *Plan) refuse(format string, args ...any) {
	p.Verdict = VerdictRefused
	p.Reasons = append(p.Reasons, fmt.Sprintf(format, args...))
}

// systemNamespace reports namespaces that operators own.
func systemNamespace(ns string) bool {
	return strings.HasPrefix(ns, "kube-") || strings.HasPrefix(ns, "openshift-")
}

// PodServiceAccount is the ServiceAccount a pod runs as: serviceAccountName,
// else the deprecated serviceAccount, else "default" (the ServiceAccount
// admission plugin's default, plugin/pkg/admission/serviceaccount/
// admission.go, Admit: DefaultServiceAccountName).
func PodServiceAccount(spec *corev1.PodSpec) string {
	switch {
	case spec.ServiceAccountName != "":
		return spec.ServiceAccountName
	case spec.DeprecatedServiceAccount != "":
		return spec.DeprecatedServiceAccount
	}
	return "default"
}

// MakePlan plans the switch of one workload. tokens are the legacy token
// Secrets of its namespace, by name.
func MakePlan(w *Workload, tokens map[string]*corev1.Secret, o Options) *Plan {
	p := &Plan{Kind: w.Kind, Group: backup.RecordGroup(w.Type.Group), Namespace: w.Object.GetNamespace(), Name: w.Object.GetName(), Verdict: VerdictSwitchable, Workload: w}
	tmpl := w.Template()
	pl := &planner{p: p, tokens: tokens, seen: map[string]bool{}, sa: PodServiceAccount(&tmpl.Spec), o: o}
	pl.refuseFixedReaders(&tmpl.Spec)
	newTmpl, changed := pl.rewriteVolumes(tmpl)
	sort.Strings(p.Secrets)
	if !changed && p.Verdict == VerdictSwitchable {
		p.refuse("no volume of the template can be rewritten")
	}
	// The rewrite is shown (diff, -o yaml) only when it is the whole
	// change the template needs: not when a reader it cannot move stays.
	if changed && p.Verdict == VerdictSwitchable {
		p.Template = newTmpl
		p.Diff = templateDiff(w, tmpl, newTmpl)
		p.tokenWarnings(o)
	}
	holdBack(p, w, o)
	return p
}

// planner is the state of one MakePlan.
type planner struct {
	p      *Plan
	tokens map[string]*corev1.Secret
	seen   map[string]bool
	sa     string
	o      Options
}

// legacyOf is the legacy token Secret named name, or nil; each one found
// is listed once in the plan's Secrets.
func (pl *planner) legacyOf(name string) *corev1.Secret {
	s := pl.tokens[name]
	if s != nil && !pl.seen[name] {
		pl.seen[name] = true
		pl.p.Secrets = append(pl.p.Secrets, name)
	}
	return s
}

// refuseFixedReaders refuses readers that can never move: an env var holds
// the token once, for the life of the container; an imagePullSecret is
// not a token the pod reads. Each is visited as k8s.io/kubernetes
// pkg/api/v1/pod/util.go VisitPodSecretNames visits
// (workload.VisitSecretNames).
func (pl *planner) refuseFixedReaders(spec *corev1.PodSpec) {
	p := pl.p
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && pl.legacyOf(e.ValueFrom.SecretKeyRef.Name) != nil {
					p.refuse("container %s reads the token of Secret %s through env var %s, which can never refresh: change the code to read a file, then switch", c.Name, e.ValueFrom.SecretKeyRef.Name, e.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil && pl.legacyOf(e.SecretRef.Name) != nil {
					p.refuse("container %s reads Secret %s through envFrom, which can never refresh: change the code to read a file, then switch", c.Name, e.SecretRef.Name)
				}
			}
		}
	}
	for _, c := range spec.EphemeralContainers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && pl.legacyOf(e.ValueFrom.SecretKeyRef.Name) != nil {
				p.refuse("ephemeral container %s reads Secret %s through env var %s", c.Name, e.ValueFrom.SecretKeyRef.Name, e.Name)
			}
		}
	}
	for _, r := range spec.ImagePullSecrets {
		if pl.legacyOf(r.Name) != nil {
			p.refuse("Secret %s is an imagePullSecret, not a token the pod reads: remove it from the template by hand", r.Name)
		}
	}
}

// rewriteVolumes returns a copy of tmpl whose volumes read projected
// tokens instead of legacy token Secrets, and whether any changed; a
// volume plugin handed such a Secret is refused (no projected equivalent).
func (pl *planner) rewriteVolumes(tmpl *corev1.PodTemplateSpec) (*corev1.PodTemplateSpec, bool) {
	newTmpl := tmpl.DeepCopy()
	changed := false
	for i := range newTmpl.Spec.Volumes {
		v := &newTmpl.Spec.Volumes[i]
		switch {
		case v.Secret != nil:
			changed = pl.rewriteSecretVolume(v) || changed
		case v.Projected != nil:
			changed = pl.rewriteProjected(v) || changed
		default:
			var other string
			oneVolume(v, func(name, via string) {
				if pl.legacyOf(name) != nil {
					other = via
				}
			})
			if other != "" {
				pl.p.refuse("volume %s hands Secret %s to the %s volume plugin, which has no projected equivalent", v.Name, secretOfVolume(v), other)
			}
		}
	}
	return newTmpl, changed
}

// rewriteSecretVolume turns a secret volume of a legacy token into a
// projected volume of the same mode.
func (pl *planner) rewriteSecretVolume(v *corev1.Volume) bool {
	s := pl.legacyOf(v.Secret.SecretName)
	if s == nil || !checkSA(pl.p, s, pl.sa, "volume "+v.Name) {
		return false
	}
	srcs, ok := project(pl.p, s, v.Secret.Items, "volume "+v.Name, pl.o)
	if !ok {
		return false
	}
	mode := v.Secret.DefaultMode
	if mode == nil {
		// The API defaults a secret volume to 0644
		// (pkg/apis/core/v1/defaults.go, SetDefaults_SecretVolumeSource).
		m := corev1.SecretVolumeSourceDefaultMode
		mode = &m
	}
	m := *mode
	v.VolumeSource = corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: &m, Sources: srcs}}
	return true
}

// rewriteProjected replaces, in a projected volume, each source of a
// legacy token Secret by the projected token's sources.
func (pl *planner) rewriteProjected(v *corev1.Volume) bool {
	var out []corev1.VolumeProjection
	touched := false
	for _, src := range v.Projected.Sources {
		if src.Secret == nil {
			out = append(out, src)
			continue
		}
		s := pl.legacyOf(src.Secret.Name)
		if s == nil || !checkSA(pl.p, s, pl.sa, "volume "+v.Name) {
			out = append(out, src)
			continue
		}
		srcs, ok := project(pl.p, s, src.Secret.Items, "volume "+v.Name, pl.o)
		if !ok {
			out = append(out, src)
			continue
		}
		out = append(out, srcs...)
		touched = true
	}
	if touched {
		v.Projected.Sources = out
	}
	return touched
}

// holdBack refuses or holds what must not be changed here even though it
// could be.
func holdBack(p *Plan, w *Workload, o Options) {
	ns := p.Namespace
	switch {
	case p.Verdict != VerdictSwitchable:
	case w.Immutable() && !w.Type.BuiltIn():
		p.refuse("a %s's pod spec is immutable: make the change shown at its source and re-create it", w.Type.Name())
	case w.Immutable():
		// Kubernetes keeps each group's validation in pkg/apis/GROUP,
		// the core group's in pkg/apis/core.
		group := w.Type.Group
		if group == "" {
			group = "core"
		}
		p.refuse("a %s's pod template is immutable (pkg/apis/%s validation): make the change shown at its source and re-create it", w.Kind, group)
	case w.Owner() != "":
		p.refuse("owned by %s, which would put its own template back: make the change there", w.Owner())
	case systemNamespace(ns) && !o.IncludeSystem:
		p.hold(HoldSystem, "namespace %s belongs to the platform, whose operators own its workloads", ns)
	}
	if p.Verdict == VerdictSwitchable || p.Verdict == VerdictSkipped {
		if tool, key := ManagedBy(w.Object); tool != "" && !o.IncludeManaged {
			p.hold(HoldManaged, "managed by %s (%s): it would revert the change; change the source (the manifest below)", tool, key)
		}
	}
}

func secretOfVolume(v *corev1.Volume) string {
	name := ""
	oneVolume(v, func(n, _ string) { name = n })
	return name
}

// oneVolume visits the Secret a single volume names, with
// workload.VisitSecretNames (the volume plugins upstream's
// VisitPodSecretNames knows).
func oneVolume(v *corev1.Volume, fn func(name, via string)) {
	workload.VisitSecretNames(&corev1.PodSpec{Volumes: []corev1.Volume{*v}}, fn)
}

// checkSA refuses a Secret of another ServiceAccount: the projected token
// is always the pod's own ServiceAccount's (pkg/volume/projected/
// projected.go, collectData: the TokenRequest is for
// pod.Spec.ServiceAccountName), so the identity would change.
func checkSA(p *Plan, s *corev1.Secret, podSA, where string) bool {
	owner := s.Annotations[corev1.ServiceAccountNameKey]
	if owner == podSA {
		return true
	}
	p.refuse("%s mounts the token of ServiceAccount %s (Secret %s) but the pod runs as %s: a projected token would change its identity; run the pod as %s first", where, owner, s.Name, podSA, owner)
	return false
}

// project turns a Secret's key mapping into the sources of the automatic
// kube-api-access volume (plugin/pkg/admission/serviceaccount/admission.go,
// TokenVolumeSource): serviceAccountToken for "token", configMap
// kube-root-ca.crt for "ca.crt", downwardAPI metadata.namespace for
// "namespace", each at the path the old mapping gave it. Without items a
// secret volume holds every key of the Secret at its own name
// (pkg/volume/secret/secret.go, MakePayload), so every key is mapped.
func project(p *Plan, s *corev1.Secret, items []corev1.KeyToPath, where string, o Options) ([]corev1.VolumeProjection, bool) {
	if len(items) == 0 {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keyOrder(keys[i]) < keyOrder(keys[j]) })
		for _, k := range keys {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	var tokens []corev1.VolumeProjection
	var ca []corev1.KeyToPath
	var nsItems []corev1.DownwardAPIVolumeFile
	ok := true
	sec := o.seconds()
	for _, it := range items {
		switch it.Key {
		case corev1.ServiceAccountTokenKey:
			if it.Mode != nil {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s: key token had mode %04o, which cannot be carried (serviceAccountToken has no per-item mode): the volume's defaultMode applies, or 0600 when the pod sets fsGroup or runAsUser (pkg/volume/projected/projected.go, collectData)", where, *it.Mode))
			}
			tokens = append(tokens, corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path: it.Path, Audience: o.Audience, ExpirationSeconds: &sec}})
		case corev1.ServiceAccountRootCAKey:
			ca = append(ca, corev1.KeyToPath{Key: corev1.ServiceAccountRootCAKey, Path: it.Path, Mode: it.Mode})
		case corev1.ServiceAccountNamespaceKey:
			// The API defaults a fieldRef's apiVersion to v1
			// (pkg/apis/core/v1/defaults.go, SetDefaults_ObjectFieldSelector);
			// set here so the plan is what the server stores.
			nsItems = append(nsItems, corev1.DownwardAPIVolumeFile{Path: it.Path, Mode: it.Mode,
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}})
		default:
			p.refuse("%s maps key %q of Secret %s, which a projected token has no equivalent for", where, it.Key, s.Name)
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	out := tokens
	if len(ca) > 0 {
		out = append(out, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap}, Items: ca}})
	}
	if len(nsItems) > 0 {
		out = append(out, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: nsItems}})
	}
	if len(tokens) == 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s maps no token key: only ca.crt and namespace are projected", where))
	}
	return out, true
}

func keyOrder(k string) int {
	for i, t := range tokenKeys {
		if t == k {
			return i
		}
	}
	return len(tokenKeys)
}

func (p *Plan) tokenWarnings(o Options) {
	sec := o.seconds()
	if o.Audience != "" {
		p.Warnings = append(p.Warnings, fmt.Sprintf("audience %q: the token loses kube-apiserver's expiry extension and is not accepted by the apiserver unless its audiences include the API's (pkg/registry/core/serviceaccount/storage/token.go, isKubeAudiences)", o.Audience))
	} else if sec != DefaultExpirationSeconds {
		p.Warnings = append(p.Warnings, fmt.Sprintf("lifetime %ds: only %ds tokens are extended by kube-apiserver (--service-account-extend-token-expiration), so a client that reads the file once fails after %s", sec, DefaultExpirationSeconds, humanSeconds(sec)))
	}
	// The kubelet rewrites the file at 80% of the lifetime or after 24 h
	// (pkg/kubelet/token/token_manager.go, requiresRefresh).
	p.Warnings = append(p.Warnings, "the token file is rewritten at 80% of its lifetime: the application must re-read it (client-go's InClusterConfig does, through BearerTokenFile)")
}

func humanSeconds(s int64) string {
	if s%3600 == 0 {
		return fmt.Sprintf("%d h", s/3600)
	}
	return fmt.Sprintf("%d min", s/60)
}
