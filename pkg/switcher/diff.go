package switcher

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// templateDiff is the unified diff of a pod template, with three lines of
// context, under the names kubectl diff gives its two sides (k8s.io/kubectl
// pkg/cmd/diff/diff.go: NewDiffer("LIVE", "MERGED"), files named by
// InfoObject.Name as group.version.kind.namespace.name, no group for the
// core API; it runs `diff -u -N`).
func templateDiff(w *Workload, before, after *corev1.PodTemplateSpec) string {
	a, _ := yaml.Marshal(before)
	b, _ := yaml.Marshal(after)
	gvk := w.Type.GroupVersionKind()
	file := strings.Join([]string{gvk.Version, w.Kind, w.Object.GetNamespace(), w.Object.GetName()}, ".")
	if gvk.Group != "" {
		file = gvk.Group + "." + file
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(a), B: lines(b),
		FromFile: "LIVE/" + file, ToFile: "MERGED/" + file, Context: 3,
	})
	return d
}

// lines splits YAML into lines that keep their newline (difflib.SplitLines
// would add an empty last line to text that ends in one).
func lines(b []byte) []string {
	out := strings.SplitAfter(string(b), "\n")
	if len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}
