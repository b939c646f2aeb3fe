package jwt

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// reader is a strict JSON reader: it accepts exactly what encoding/json.Valid
// accepts and decodes strings as encoding/json does (invalid UTF-8 and lone
// surrogates become U+FFFD). The claim parser drives it value by value, so a
// token is checked and read in one pass without building a tree: beside the
// signature check, parsing is most of what offline verification costs.
//
// The first syntax error sets bad and moves to the end: kind then reports
// badKind and next false, so a caller that reads only what kind reported
// never reads past an error.
type reader struct {
	b     []byte
	i     int
	depth int
	bad   bool
	// arena holds strings that needed decoding. Appends only write past the
	// strings already handed out, which therefore never change.
	arena []byte
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type kind uint8

const (
	badKind kind = iota
	objectKind
	arrayKind
	stringKind
	numberKind
	trueKind
	falseKind
	nullKind
)

var kindNames = [...]string{"invalid JSON", "object", "array", "string", "number", "true", "false", "null"}

func (k kind) String() string { return kindNames[k] }

func (r *reader) reset(b []byte) {
	r.b, r.i, r.depth, r.bad = b, 0, 0, false
}

func (r *reader) fail() {
	r.bad = true
	r.i = len(r.b)
}

func (r *reader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// end checks that only whitespace follows the document.
func (r *reader) end() {
	r.ws()
	if r.i != len(r.b) {
		r.fail()
	}
}

// kind tells what the next value is without reading it.
func (r *reader) kind() kind {
	r.ws()
	if r.i >= len(r.b) {
		r.fail()
		return badKind
	}
	switch c := r.b[r.i]; {
	case c == '{':
		return objectKind
	case c == '[':
		return arrayKind
	case c == '"':
		return stringKind
	case c == '-' || c >= '0' && c <= '9':
		return numberKind
	case c == 't':
		return trueKind
	case c == 'f':
		return falseKind
	case c == 'n':
		return nullKind
	}
	r.fail()
	return badKind
}

// open enters the object or array that kind reported.
func (r *reader) open() bool {
	if r.bad {
		return false
	}
	if r.depth++; r.depth > maxDepth {
		r.fail()
		return false
	}
	r.i++
	return true
}

// next moves to the next member or element of the open object or array;
// at its closing bracket it leaves it and returns false. n counts the items
// seen so far and must start at 0.
func (r *reader) next(closing byte, n *int) bool {
	if r.bad {
		return false
	}
	r.ws()
	if r.i >= len(r.b) {
		r.fail()
		return false
	}
	c := r.b[r.i]
	if c == closing {
		r.i++
		r.depth--
		return false
	}
	if *n > 0 {
		if c != ',' {
			r.fail()
			return false
		}
		r.i++
	}
	*n++
	return true
}

// key reads a member name and its colon.
func (r *reader) key() []byte {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		r.fail()
		return nil
	}
	k := r.str()
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != ':' {
		r.fail()
		return nil
	}
	r.i++
	return k
}

// str reads the string that kind reported, decoded. Without escapes or
// non-ASCII bytes it is a view of the input.
func (r *reader) str() []byte {
	start := r.i + 1
	for i := start; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			r.i = i + 1
			return r.b[start:i:i]
		case c < 0x20:
			r.fail()
			return nil
		case c == '\\' || c >= utf8.RuneSelf:
			return r.decodeStr(start)
		}
	}
	r.fail()
	return nil
}

func (r *reader) decodeStr(start int) []byte {
	from := len(r.arena)
	b := r.b
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			r.i = i + 1
			return r.arena[from:len(r.arena):len(r.arena)]
		case c < 0x20:
			r.fail()
			return nil
		case c == '\\':
			if i+1 >= len(b) {
				r.fail()
				return nil
			}
			i += 2
			switch e := b[i-1]; e {
			case '"', '\\', '/':
				r.arena = append(r.arena, e)
			case 'b':
				r.arena = append(r.arena, '\b')
			case 'f':
				r.arena = append(r.arena, '\f')
			case 'n':
				r.arena = append(r.arena, '\n')
			case 'r':
				r.arena = append(r.arena, '\r')
			case 't':
				r.arena = append(r.arena, '\t')
			case 'u':
				if i = r.appendUEscape(b, i); i < 0 {
					r.fail()
					return nil
				}
			default:
				r.fail()
				return nil
			}
		case c < utf8.RuneSelf:
			r.arena = append(r.arena, c)
			i++
		default:
			rn, size := utf8.DecodeRune(b[i:])
			if rn == utf8.RuneError && size == 1 {
				r.arena = utf8.AppendRune(r.arena, unicode.ReplacementChar)
			} else {
				r.arena = append(r.arena, b[i:i+size]...)
			}
			i += size
		}
	}
	r.fail()
	return nil
}

// appendUEscape appends the rune of the \uXXXX escape whose hex digits
// start at b[i] and returns the index past it, or -1 when they are not hex.
func (r *reader) appendUEscape(b []byte, i int) int {
	rn := hex4(b, i)
	if rn < 0 {
		return -1
	}
	i += 4
	if utf16.IsSurrogate(rn) {
		// A pair makes one rune; anything else is
		// replaced and the next escape read on its own.
		if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
			if d := utf16.DecodeRune(rn, hex4(b, i+2)); d != unicode.ReplacementChar {
				r.arena = utf8.AppendRune(r.arena, d)
				return i + 6
			}
		}
		rn = unicode.ReplacementChar
	}
	r.arena = utf8.AppendRune(r.arena, rn)
	return i
}

// hex4 reads the four hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var v rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		v = v<<4 | rune(c)
	}
	return v
}

// number reads the number that kind reported, as written.
func (r *reader) number() []byte {
	b, i := r.b, r.i
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		r.fail()
		return nil
	}
	if i < len(b) && b[i] == '.' {
		if j := digits(b, i+1); j > i+1 {
			i = j
		} else {
			r.fail()
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digits(b, i); j > i {
			i = j
		} else {
			r.fail()
			return nil
		}
	}
	r.i = i
	return b[start:i:i]
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func (r *reader) literal(word string) {
	if len(r.b)-r.i < len(word) || string(r.b[r.i:r.i+len(word)]) != word {
		r.fail()
		return
	}
	r.i += len(word)
}

// skip reads and checks the next value and drops it.
func (r *reader) skip() {
	switch r.kind() {
	case objectKind:
		if r.open() {
			for n := 0; r.next('}', &n); {
				r.key()
				r.skip()
			}
		}
	case arrayKind:
		if r.open() {
			for n := 0; r.next(']', &n); {
				r.skip()
			}
		}
	case stringKind:
		// Nothing keeps the string: give its decoded bytes back.
		mark := len(r.arena)
		r.str()
		r.arena = r.arena[:mark]
	case numberKind:
		r.number()
	case trueKind:
		r.literal("true")
	case falseKind:
		r.literal("false")
	case nullKind:
		r.literal("null")
	}
}

// view turns bytes the token owns and never changes into a string without
// copying them.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// members finds repeated member names in one object: with duplicates, JSON
// readers disagree on which value counts.
type members struct {
	few [16][]byte
	n   int
	// Tokens have a dozen members; a hostile one may have a hundred
	// thousand, which a linear scan would make quadratic.
	many map[string]struct{}
}

// repeated records name and reports whether it was seen before.
func (m *members) repeated(name []byte) bool {
	if m.many == nil {
		for _, s := range m.few[:m.n] {
			if bytes.Equal(s, name) {
				return true
			}
		}
		if m.n < len(m.few) {
			m.few[m.n] = name
			m.n++
			return false
		}
		m.many = make(map[string]struct{}, 2*len(m.few))
		for _, s := range m.few {
			m.many[string(s)] = struct{}{}
		}
	}
	if _, ok := m.many[string(name)]; ok {
		return true
	}
	m.many[string(name)] = struct{}{}
	return false
}
