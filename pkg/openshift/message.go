package openshift

import (
	"fmt"
	"strconv"
	"strings"
)

// RevisionCount is one clause of the NodeInstallerProgressing message:
// "2 nodes are at revision 12" or "0 nodes have achieved new revision 13".
type RevisionCount struct {
	Nodes    int
	Revision int32
	// Achieved marks the "have achieved new revision" clause, which counts
	// nodes already on the newest revision while others are not.
	Achieved bool
}

func (c RevisionCount) String() string {
	noun, verb := "nodes", "are"
	if c.Nodes == 1 {
		noun, verb = "node", "is"
	}
	if c.Achieved {
		verb = "have"
		if c.Nodes == 1 {
			verb = "has"
		}
		return fmt.Sprintf("%d %s %s achieved new revision %d", c.Nodes, noun, verb, c.Revision)
	}
	return fmt.Sprintf("%d %s %s at revision %d", c.Nodes, noun, verb, c.Revision)
}

// FormatNodeInstallerMessage is the current (4.16+) grammar, used by tests
// and the fuzz target as the canonical form.
func FormatNodeInstallerMessage(cs []RevisionCount) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

// ParseNodeInstallerMessage reads the NodeInstallerProgressing message.
// Clauses are joined by "; ". Both grammars are accepted: "1 node is at
// revision 12" (4.16+) and "1 nodes are at revision 12" (older releases and
// the docs); singular and plural forms are not checked against the number.
func ParseNodeInstallerMessage(msg string) ([]RevisionCount, error) {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return nil, fmt.Errorf("empty NodeInstallerProgressing message")
	}
	var out []RevisionCount
	for _, clause := range strings.Split(msg, ";") {
		c, err := parseClause(strings.TrimSpace(clause))
		if err != nil {
			return nil, fmt.Errorf("NodeInstallerProgressing message %q: %w", truncate(msg, 200), err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseClause(s string) (RevisionCount, error) {
	f := strings.Fields(s)
	var c RevisionCount
	var rev string
	switch {
	// N node(s) is|are at revision R
	case len(f) == 6 && isNode(f[1]) && (f[2] == "is" || f[2] == "are") && f[3] == "at" && f[4] == "revision":
		rev = f[5]
	// N node(s) has|have achieved new revision R
	case len(f) == 7 && isNode(f[1]) && (f[2] == "has" || f[2] == "have") && f[3] == "achieved" && f[4] == "new" && f[5] == "revision":
		rev, c.Achieved = f[6], true
	default:
		return c, fmt.Errorf("clause %q is not \"N nodes are at revision R\" or \"N nodes have achieved new revision R\"", truncate(s, 80))
	}
	n, err := strconv.ParseUint(f[0], 10, 31)
	if err != nil {
		return c, fmt.Errorf("node count %q is not a number", truncate(f[0], 20))
	}
	r, err := strconv.ParseUint(rev, 10, 31)
	if err != nil {
		return c, fmt.Errorf("revision %q is not a number", truncate(rev, 20))
	}
	c.Nodes, c.Revision = int(n), int32(r)
	return c, nil
}

func isNode(s string) bool { return s == "node" || s == "nodes" }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
