package jwt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// readAny builds encoding/json's generic value (numbers as json.Number)
// with the reader, so the two can be compared value for value.
func readAny(r *reader) any {
	switch r.kind() {
	case objectKind:
		m := map[string]any{}
		if r.open() {
			for n := 0; r.next('}', &n); {
				k := string(r.key())
				m[k] = readAny(r) // the last of duplicates wins, as in encoding/json
			}
		}
		return m
	case arrayKind:
		a := []any{}
		if r.open() {
			for n := 0; r.next(']', &n); {
				a = append(a, readAny(r))
			}
		}
		return a
	case stringKind:
		return string(r.str())
	case numberKind:
		return json.Number(r.number())
	case trueKind:
		r.literal("true")
		return true
	case falseKind:
		r.literal("false")
		return false
	case nullKind:
		r.literal("null")
		return nil
	}
	return nil
}

// compareWithEncodingJSON fails when the reader and encoding/json disagree on
// whether b is JSON or on what it holds.
func compareWithEncodingJSON(t *testing.T, b []byte) {
	t.Helper()
	r := reader{b: b}
	got := readAny(&r)
	r.end()
	skipper := reader{b: b}
	skipper.skip()
	skipper.end()
	valid := json.Valid(b)
	if !r.bad != valid || !skipper.bad != valid {
		t.Fatalf("%q: reader accepts=%v, skip accepts=%v, encoding/json.Valid=%v", b, !r.bad, !skipper.bad, valid)
	}
	if !valid {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var want any
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%q: encoding/json: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: reader read %#v, encoding/json %#v", b, got, want)
	}
}

var jsonCases = []string{
	// numbers
	`0`, `-0`, `1`, `-1`, `10`, `01`, `-`, `-01`, `1.`, `.5`, `1.5`, `1e`, `1e+`, `1e-3`, `1E5`, `0.0e-0`, `1e309`,
	`+1`, `0x10`, `1.5e3.2`, `- 1`, `NaN`, `Infinity`,
	// literals
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `nulll`,
	// strings
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\x"`, `"\u0041"`, `"\u004"`, `"\u00e9"`, `"\uD83D\uDE00"`,
	`"\uD83D"`, `"\uDE00"`, `"\uD83Dx"`, `"\uD83D\u0041"`, `"\uD83D\uD83D\uDE00"`, `"\uD83D\u12"`, "\"\x01\"", "\"\x7f\"",
	"\"\xff\"", "\"\xc3\xa9\"", "\"\xe2\x82\"", "\"a\xed\xa0\x80b\"", `"unterminated`, `"\`, "\"tab\there\"",
	// structure
	`{}`, `[]`, `{,}`, `[,]`, `[1,]`, `[,1]`, `[1 2]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a" 1}`,
	`{1:2}`, `[`, `]`, `{`, `}`, `{}}`, `[]]`, ` {} `, "\t\r\n{}\n", "\u00a0{}", `{}{}`, `{"a":[1,{"b":null}],"a":2}`,
	`{"\u0061":1,"a":2}`, `[[[[]]]]`, `[{}]`, `{"a":{"b":{"c":[true,false,null,-1.5e-3,"x"]}}}`, ``, ` `,
}

func TestReaderAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range jsonCases {
		compareWithEncodingJSON(t, []byte(c))
	}
	// encoding/json's nesting limit, on both sides of it.
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		compareWithEncodingJSON(t, []byte(strings.Repeat("[", depth)+strings.Repeat("]", depth)))
	}
}

// FuzzJSONReader: the reader must accept exactly what encoding/json accepts
// and read the same values from it.
func FuzzJSONReader(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Add([]byte(payloadJSON()))
	f.Fuzz(func(t *testing.T, b []byte) {
		compareWithEncodingJSON(t, b)
	})
}

func TestDuplicateFoundAmongManyMembers(t *testing.T) {
	// Past the first few names the reader switches from a scan to a set;
	// both must see a repeat.
	for _, n := range []int{3, 16, 17, 40, 50000} {
		var b strings.Builder
		b.WriteString(`{"alg":"RS256"`)
		for i := range n {
			fmt.Fprintf(&b, `,"m%d":%d`, i, i)
		}
		unique := b.String() + "}"
		repeated := b.String() + fmt.Sprintf(`,"m%d":0}`, n-1)
		if _, err := Decode(b64([]byte(unique)) + ".e30.AA"); err != nil {
			t.Fatalf("%d unique members: %v", n, err)
		}
		_, err := Decode(b64([]byte(repeated)) + ".e30.AA")
		if want := fmt.Sprintf(`member "m%d" appears twice`, n-1); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%d members, the last repeated: %v, want %q", n, err, want)
		}
	}
}

func TestClaimsTakeDecodedStrings(t *testing.T) {
	tok, err := Decode(signRaw(rsaKey, `{"alg":"RS256"}`,
		`{"iss":"https:\/\/issuer.example","sub":"system:serviceaccount:n\u0073:caf\u00e9","aud":["\uD83D\uDE00","bad`+"\xff"+`"],`+
			`"kubernetes.io":{"pod":{"name":"p","uid":"u","name":"q"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := tok.Claims
	if c.Issuer != "https://issuer.example" || c.Subject != "system:serviceaccount:ns:café" {
		t.Fatalf("iss %q sub %q", c.Issuer, c.Subject)
	}
	if len(c.Audience) != 2 || c.Audience[0] != "\U0001F600" || c.Audience[1] != "bad\uFFFD" {
		t.Fatalf("aud %q", c.Audience)
	}
	if len(c.Problems) != 1 || !strings.Contains(c.Problems[0], `kubernetes.io.pod has member "name" twice`) {
		t.Fatalf("problems %q", c.Problems)
	}
}
