// Package layout holds the test that keeps the map of pkg/ in the code
// true: every package's doc comment says what it must not import, and this
// test reads that sentence and checks the package's imports against it.
package layout

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/bound-token/kubectl-bound-token/"

// pkgDir is pkg/, from this package's folder (go test runs in it).
const pkgDir = "../.."

type pkgInfo struct {
	path    string // "pkg/legacy"
	doc     string
	imports map[string]bool // this module's packages, as "pkg/..."
}

func readPackages(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	out := map[string]*pkgInfo{}
	err := filepath.WalkDir(pkgDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(pkgDir, filepath.Dir(p))
		key := "pkg/" + filepath.ToSlash(rel)
		pi := out[key]
		if pi == nil {
			pi = &pkgInfo{path: key, imports: map[string]bool{}}
			out[key] = pi
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package ") {
			pi.doc += f.Doc.Text()
		}
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			if strings.HasPrefix(ip, module) {
				pi.imports[strings.TrimPrefix(ip, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var pkgRef = regexp.MustCompile(`pkg/[a-z0-9/]*[a-z0-9]`)

// rule reads the "must not import" sentence of a package doc: either
// "must not import pkg/a, pkg/b or pkg/c" (those are forbidden), or
// "must not import any other package of this module [except pkg/a and
// pkg/b]" (only those are allowed).
func rule(doc string) (forbidden, allowed []string, all, ok bool) {
	text := strings.Join(strings.Fields(doc), " ")
	i := strings.Index(text, "must not import ")
	if i < 0 {
		return nil, nil, false, false
	}
	sentence := text[i:]
	if j := strings.Index(sentence, ". "); j >= 0 {
		sentence = sentence[:j]
	}
	// What follows a colon or a semicolon explains; it names no rule.
	sentence, _, _ = strings.Cut(sentence, ":")
	sentence, _, _ = strings.Cut(sentence, ";")
	if strings.HasPrefix(sentence, "must not import any other package of this module") {
		_, except, _ := strings.Cut(sentence, "except")
		return nil, pkgRef.FindAllString(except, -1), true, true
	}
	return pkgRef.FindAllString(sentence, -1), nil, false, true
}

// TestEveryPackageSaysWhatItMustNotImport: the map of the code is in the
// code. A package without the sentence, or whose imports break it, fails.
func TestEveryPackageSaysWhatItMustNotImport(t *testing.T) {
	pkgs := readPackages(t)
	var names []string
	for k := range pkgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		pi := pkgs[name]
		if !strings.HasPrefix(pi.doc, "Package ") {
			t.Errorf("%s has no package doc comment", name)
			continue
		}
		if name == "pkg/cmd" {
			continue // the top: checked by TestNothingImportsTheCommandLayer
		}
		forbidden, allowed, all, ok := rule(pi.doc)
		if !ok {
			t.Errorf("%s: its doc comment does not say what it must not import", name)
			continue
		}
		for _, f := range forbidden {
			if pkgs[f] == nil {
				t.Errorf("%s: its doc comment names %s, which does not exist", name, f)
			}
			if pi.imports[f] {
				t.Errorf("%s imports %s, which its doc comment forbids", name, f)
			}
		}
		if all {
			ok := map[string]bool{}
			for _, a := range allowed {
				ok[a] = true
			}
			for im := range pi.imports {
				if !ok[im] {
					t.Errorf("%s imports %s; its doc comment allows only %v", name, im, allowed)
				}
			}
		}
	}
}

// TestNothingImportsTheCommandLayer: behaviour lives below pkg/cmd.
func TestNothingImportsTheCommandLayer(t *testing.T) {
	for name, pi := range readPackages(t) {
		if pi.imports["pkg/cmd"] {
			t.Errorf("%s imports pkg/cmd", name)
		}
	}
}

// The rule reader itself, on the two forms.
func TestRule(t *testing.T) {
	f, _, all, ok := rule("Package x does y.\n\nIt must not import pkg/a, pkg/b/c\nor pkg/d: because.")
	if !ok || all || strings.Join(f, " ") != "pkg/a pkg/b/c pkg/d" {
		t.Errorf("forbidden form: %v %v %v", f, all, ok)
	}
	_, a, all, ok := rule("Package x.\n\nIt must not import any other package of this module except pkg/retry and pkg/internal/text.")
	if !ok || !all || strings.Join(a, " ") != "pkg/retry pkg/internal/text" {
		t.Errorf("allowed form: %v %v %v", a, all, ok)
	}
	if _, _, _, ok := rule("Package x imports what it likes."); ok {
		t.Error("a doc without the sentence has a rule")
	}
}
