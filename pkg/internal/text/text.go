// Package text is the one home of the small wording helpers that the domain
// packages and the command layer share, so that every message follows the
// same rule.
package text

import (
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
