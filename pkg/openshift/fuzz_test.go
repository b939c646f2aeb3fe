package openshift

import (
	"reflect"
	"testing"
)

// FuzzParseNodeInstallerMessage: the parser never panics, and whatever it
// accepts formats back (current grammar) to a message that parses to the
// same counts, with no negative numbers.
func FuzzParseNodeInstallerMessage(f *testing.F) {
	for _, s := range []string{
		"3 nodes are at revision 12",
		"1 node is at revision 11; 2 nodes are at revision 12",
		"1 nodes are at revision 12",
		"3 nodes are at revision 11; 0 nodes have achieved new revision 12",
		"2147483647 nodes are at revision 2147483647",
		"", ";", "1 node is at revision 1;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		cs, err := ParseNodeInstallerMessage(msg)
		if err != nil {
			return
		}
		if len(cs) == 0 {
			t.Fatalf("%q: accepted with no clauses", msg)
		}
		for _, c := range cs {
			if c.Nodes < 0 || c.Revision < 0 {
				t.Fatalf("%q: negative %+v", msg, c)
			}
		}
		again, err := ParseNodeInstallerMessage(FormatNodeInstallerMessage(cs))
		if err != nil || !reflect.DeepEqual(again, cs) {
			t.Fatalf("%q: round trip %+v -> %+v (%v)", msg, cs, again, err)
		}
	})
}
