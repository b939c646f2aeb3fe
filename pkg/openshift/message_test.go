package openshift

import (
	"reflect"
	"testing"
)

func TestParseNodeInstallerMessageBothGrammars(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want []RevisionCount
	}{
		{"3 nodes are at revision 12", []RevisionCount{{3, 12, false}}},
		{"1 node is at revision 11; 2 nodes are at revision 12", []RevisionCount{{1, 11, false}, {2, 12, false}}},
		{"1 nodes are at revision 11; 2 nodes are at revision 12", []RevisionCount{{1, 11, false}, {2, 12, false}}},
		{"1 nodes are at revision 12", []RevisionCount{{1, 12, false}}},
		{"3 nodes are at revision 11; 0 nodes have achieved new revision 12", []RevisionCount{{3, 11, false}, {0, 12, true}}},
		{"2 nodes are at revision 11; 1 node has achieved new revision 12", []RevisionCount{{2, 11, false}, {1, 12, true}}},
		{" 3 nodes are at revision 7\n", []RevisionCount{{3, 7, false}}},
	} {
		got, err := ParseNodeInstallerMessage(tc.msg)
		if err != nil {
			t.Errorf("%q: %v", tc.msg, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.msg, got, tc.want)
		}
	}
}

func TestParseNodeInstallerMessageRejects(t *testing.T) {
	for _, msg := range []string{
		"", "All nodes are at revision 12", "3 nodes are at revision", "3 nodes are at revision x",
		"-1 nodes are at revision 3", "3 nodes are at revision 99999999999", "3 nodes are at revision 12;",
		"3 pods are at revision 12", "3 nodes were at revision 12",
	} {
		if got, err := ParseNodeInstallerMessage(msg); err == nil {
			t.Errorf("%q parsed as %+v", msg, got)
		}
	}
}

func TestFormatIsTheCurrentGrammar(t *testing.T) {
	got := FormatNodeInstallerMessage([]RevisionCount{{1, 11, false}, {2, 12, false}})
	if got != "1 node is at revision 11; 2 nodes are at revision 12" {
		t.Fatal(got)
	}
	if got := FormatNodeInstallerMessage([]RevisionCount{{3, 11, false}, {0, 12, true}}); got != "3 nodes are at revision 11; 0 nodes have achieved new revision 12" {
		t.Fatal(got)
	}
}
