package workload

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// The kinds of table above know where their pod template is. Any other
// API's pod specs are found by their shape: what
// k8s.io/kubernetes pkg/api/v1/pod/util.go VisitPodSecretNames reads
// (imagePullSecrets, the containers' env and envFrom, volumes) is in an
// object that has a containers list of objects with an image: a PodSpec
// (k8s.io/api core/v1 types.go: Containers []Container, Container.Image).
// Controllers that embed a pod spec (Argo Rollouts, Knative, KEDA's
// ScaledJob, Kubeflow's jobs) all embed that type, whole or pruned.

// StepKind is what one step of a Path goes through.
type StepKind uint8

const (
	// FieldStep goes into the field Step.Field of an object.
	FieldStep StepKind = iota
	// ItemsStep goes into every item of an array.
	ItemsStep
	// ValuesStep goes into every value of a map (an object whose schema
	// has additionalProperties, as Kubeflow's tfReplicaSpecs).
	ValuesStep
)

// Step is one step of a Path.
type Step struct {
	Kind  StepKind
	Field string
}

// Path is where pod specs are in an object, from its root.
type Path []Step

// plainField is a field name JSONPath can write after a dot.
var plainField = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// String prints the path as JSONPath: ".spec.template.spec",
// ".spec.tfReplicaSpecs[*].template.spec" ([*] is every item of an array
// and every value of a map, as in RFC 9535); "" is the root.
func (p Path) String() string {
	var b strings.Builder
	for _, s := range p {
		switch s.Kind {
		case FieldStep:
			b.WriteString(member(s.Field))
		default:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

// member prints a field or map key as a JSONPath member: ".name", or
// "['a.b']" when a dot would not do.
func member(name string) string {
	if plainField.MatchString(name) {
		return "." + name
	}
	return "['" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name) + "']"
}

// componentsRef prefixes a $ref to a schema of the document's components
// (OpenAPI 3.0 "Components Object"), as kube-openapi writes them in
// /openapi/v3: "#/components/schemas/io.k8s.api.core.v1.PodSpec".
const componentsRef = "#/components/schemas/"

// PodSpecPaths lists the paths to every pod spec an object of schema s
// holds, at any depth: in fields, in arrays' items and in maps' values.
// A $ref is not followed (a CRD's schema has none): see PodSpecPathsIn.
// The object's status is skipped: it holds no pod spec anything runs. A
// path ends at a pod spec: one holds no other.
func PodSpecPaths(s *spec.Schema) []Path { return PodSpecPathsIn(s, nil) }

// PodSpecPathsIn is PodSpecPaths for a schema of an OpenAPI v3 document
// whose $refs point into components (the document's
// Components.Schemas), as the apiserver's /openapi/v3 serves the
// built-in and aggregated APIs' schemas: a $ref, alone or in an allOf
// (kube-openapi wraps a $ref with a default or description in allOf), is
// followed. A $ref met again inside itself (a recursive type, such as
// JSONSchemaProps) is not followed again.
func PodSpecPathsIn(s *spec.Schema, components map[string]*spec.Schema) []Path {
	w := &walker{components: components, memo: map[string][]Path{}, busy: map[string]bool{}}
	return w.paths(s, true)
}

type walker struct {
	components map[string]*spec.Schema
	// memo holds each $ref's paths once known; busy the $refs being
	// walked (the visited set that stops a recursive $ref), cuts how
	// many times one was met: a $ref whose walk met one is not memoized,
	// its paths being those of one entry only.
	memo map[string][]Path
	busy map[string]bool
	cuts int
}

// target resolves a $ref into components: nil if s has none or it
// points elsewhere.
func (w *walker) target(s *spec.Schema) (string, *spec.Schema) {
	ref := s.Ref.String()
	if ref == "" || !strings.HasPrefix(ref, componentsRef) {
		return "", nil
	}
	// JSON pointer escapes (RFC 6901): ~1 is "/", ~0 is "~".
	name := strings.NewReplacer("~1", "/", "~0", "~").Replace(strings.TrimPrefix(ref, componentsRef))
	t := w.components[name]
	if t == nil {
		return "", nil
	}
	return ref, t
}

func (w *walker) paths(s *spec.Schema, root bool) []Path {
	if s == nil {
		return nil
	}
	if ref, t := w.target(s); t != nil {
		// At the root, status is skipped: a $ref's paths there differ.
		key := ref
		if root {
			key = "root:" + ref
		}
		if p, ok := w.memo[key]; ok {
			return p
		}
		if w.busy[ref] {
			w.cuts++
			return nil
		}
		w.busy[ref] = true
		cuts := w.cuts
		p := w.paths(t, root)
		delete(w.busy, ref)
		if w.cuts == cuts {
			w.memo[key] = p
		}
		return p
	}
	if w.isPodSpec(s) {
		return []Path{{}}
	}
	var out []Path
	under := func(step Step, sub *spec.Schema) {
		for _, p := range w.paths(sub, false) {
			out = append(out, append(Path{step}, p...))
		}
	}
	for _, name := range sortedKeys(s.Properties) {
		if root && name == "status" {
			continue
		}
		prop := s.Properties[name]
		under(Step{Kind: FieldStep, Field: name}, &prop)
	}
	if s.Items != nil {
		under(Step{Kind: ItemsStep}, s.Items.Schema)
		for i := range s.Items.Schemas {
			under(Step{Kind: ItemsStep}, &s.Items.Schemas[i])
		}
	}
	if s.AdditionalProperties != nil {
		under(Step{Kind: ValuesStep}, s.AdditionalProperties.Schema)
	}
	for _, all := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range all {
			out = append(out, w.paths(&all[i], root)...)
		}
	}
	return dedupe(out)
}

// isPodSpec says whether s is a pod spec's shape: an object with a
// containers array whose items have an image.
func (w *walker) isPodSpec(s *spec.Schema) bool {
	containers := w.property(s, "containers", map[string]bool{})
	if containers == nil {
		return false
	}
	for _, c := range w.expand(containers, map[string]bool{}) {
		if c.Items == nil {
			continue
		}
		items := append([]spec.Schema{}, c.Items.Schemas...)
		if c.Items.Schema != nil {
			items = append(items, *c.Items.Schema)
		}
		for i := range items {
			if w.property(&items[i], "image", map[string]bool{}) != nil {
				return true
			}
		}
	}
	return false
}

// expand is s with what its $ref and allOf, anyOf and oneOf bring.
func (w *walker) expand(s *spec.Schema, seen map[string]bool) []*spec.Schema {
	if ref, t := w.target(s); t != nil {
		if seen[ref] {
			return nil
		}
		seen[ref] = true
		return w.expand(t, seen)
	}
	out := []*spec.Schema{s}
	for _, all := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range all {
			out = append(out, w.expand(&all[i], seen)...)
		}
	}
	return out
}

// property is s's property name, through $refs and allOf, or nil.
func (w *walker) property(s *spec.Schema, name string, seen map[string]bool) *spec.Schema {
	for _, e := range w.expand(s, seen) {
		if p, ok := e.Properties[name]; ok {
			return &p
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dedupe(paths []Path) []Path {
	seen := map[string]bool{}
	out := paths[:0]
	for _, p := range paths {
		k := fmt.Sprint([]Step(p))
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// PodSpecs calls fn with each pod spec at path p in the object's data
// (an unstructured object's Object), converted to a corev1.PodSpec, and
// the data path it is at (".spec.template.spec",
// ".spec.tfReplicaSpecs.Worker.template.spec").
// What the spec reads comes from the data alone: a field the schema left
// untyped (Argo Rollouts' volumes, x-kubernetes-preserve-unknown-fields)
// is read as it is there. A path missing or null in the data holds
// nothing; data of another shape than the path's, or that does not
// convert to a PodSpec, is an error: the object's readers are then not
// known. fn's error stops the walk and is returned.
func PodSpecs(obj map[string]any, p Path, fn func(path string, spec *corev1.PodSpec) error) error {
	return walkPath(obj, p, "", fn)
}

func walkPath(v any, p Path, at string, fn func(string, *corev1.PodSpec) error) error {
	if v == nil {
		return nil
	}
	if len(p) == 0 {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: a pod spec is %T, not an object", root(at), v)
		}
		return convert(m, at, fn)
	}
	switch s := p[0]; s.Kind {
	case FieldStep:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, not an object", root(at), v)
		}
		return walkPath(m[s.Field], p[1:], at+member(s.Field), fn)
	case ItemsStep:
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, not an array", root(at), v)
		}
		for i, item := range l {
			if err := walkPath(item, p[1:], at+"["+strconv.Itoa(i)+"]", fn); err != nil {
				return err
			}
		}
	case ValuesStep:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, not a map", root(at), v)
		}
		for _, k := range sortedKeys(m) {
			if err := walkPath(m[k], p[1:], at+member(k), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func root(at string) string {
	if at == "" {
		return "."
	}
	return at
}

func convert(m map[string]any, at string, fn func(string, *corev1.PodSpec) error) error {
	var ps corev1.PodSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ps); err != nil {
		return fmt.Errorf("%s: not a pod spec: %w", root(at), err)
	}
	return fn(root(at), &ps)
}

// SearchPodSpecs finds pod specs in an object's data by their shape, for
// an API whose schema does not say where they are (Opaque: Argo
// Workflows' CRDs leave spec x-kubernetes-preserve-unknown-fields): a map
// with a non-empty containers list whose items are all maps with an image
// string, at any depth but in status. It calls fn as PodSpecs does, with
// the data path found, in a stable order (map keys sorted). It does not
// look inside a pod spec it found.
func SearchPodSpecs(obj map[string]any, fn func(path string, spec *corev1.PodSpec) error) error {
	return search(obj, "", true, fn)
}

func search(v any, at string, top bool, fn func(string, *corev1.PodSpec) error) error {
	switch v := v.(type) {
	case map[string]any:
		if podSpecData(v) {
			return convert(v, at, fn)
		}
		for _, k := range sortedKeys(v) {
			if top && k == "status" {
				continue
			}
			if err := search(v[k], at+member(k), false, fn); err != nil {
				return err
			}
		}
	case []any:
		for i, item := range v {
			if err := search(item, at+"["+strconv.Itoa(i)+"]", false, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// podSpecData is the pod spec's shape in data.
func podSpecData(m map[string]any) bool {
	l, ok := m["containers"].([]any)
	if !ok || len(l) == 0 {
		return false
	}
	for _, c := range l {
		c, ok := c.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := c["image"].(string); !ok {
			return false
		}
	}
	return true
}
