// Package text is the one home of the small wording helpers that the domain
// packages and the command layer share, so that every message follows the
// same rule.
//
// It must not import any other package of this module.
package text

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// OneLine folds s onto one line, every run of white space (newlines
// included) becoming one space, and cuts it after max bytes with "..."
// (max <= 0 keeps it whole). Errors and check results of this plugin are
// one line; servers and parsers answer with several.
func OneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if max <= 0 || len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Plural is "s" unless n is 1: "%d Secret%s".
func Plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Kubectl is how a command we print for the user to run names kubectl:
// the kubectl that launched us when kubectl says which (kubectl 1.37 sets
// KUBECTL_PATH to its own binary for every plugin it runs,
// k8s.io/kubectl/pkg/cmd/plugin.go, pluginEnvironment), so that a user of
// `oc` or of a kubectl that is not first on PATH gets a line they can
// paste. It is the base name when PATH finds that very file under it, else
// the whole path; "kubectl" when the variable is unset (an older kubectl,
// or the plugin run directly).
func Kubectl() string {
	return kubectlFrom(os.Getenv("KUBECTL_PATH"), exec.LookPath)
}

func kubectlFrom(path string, lookPath func(string) (string, error)) string {
	if path == "" {
		return "kubectl"
	}
	base := filepath.Base(path)
	name := strings.TrimSuffix(base, ".exe")
	found, err := lookPath(name)
	if err != nil {
		return path
	}
	a, errA := os.Stat(found)
	b, errB := os.Stat(path)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return path
	}
	return name
}
