// Package redact removes credentials from text before it is logged: JWTs
// (bound and legacy ServiceAccount tokens), PEM private keys, both also in
// base64 as Secrets carry them, and every value of a Secret's data.
//
// Why: with -v=8 and up, client-go logs request and response bodies. A
// TokenRequest answer holds the new token, a TokenReview request the token
// under review, a Secret the legacy token or a signing key. The plugin
// installs Filter into klog (see pkg/cmd), so whatever is logged, by client-go
// or by us, is redacted on the way out; bodies stay readable otherwise.
//
// Limit: klog does not pass the err argument of ErrorS (logr's Error) through
// the filter, only the message and key/value pairs. Errors must not carry
// credentials in the first place (pkg/jwt errors never quote token bytes).
//
// It must not import any other package of this module.
package redact

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/klog/v2"
)

// Mark replaces what was removed.
const Mark = "[REDACTED]"

var (
	// A JWS compact serialization: base64url JSON header ("eyJ"), a dot and
	// more. A truncated token (body logs are cut at 1 or 10 KiB) still
	// matches once its header is complete.
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]*`)
	// The same in standard base64, as in a Secret's data.token: "eyJ" encodes
	// to "ZXlK".
	b64JWTRE = regexp.MustCompile(`ZXlK[A-Za-z0-9+/]{16,}={0,2}`)
	// A PEM private key, also with JSON-escaped newlines, also cut short.
	pemKeyRE = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
	// Standard base64 of a PEM block ("-----BEGIN" encodes to
	// "LS0tLS1CRUdJTi"); a private key is told from a certificate by
	// decoding its start.
	b64PEMRE = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}`)
	// "data":{...} or "stringData":{...} (maybe cut short) in a Secret.
	secretDataRE = regexp.MustCompile(`"(data|stringData)":\{[^{}]*(\}|$)`)
	kvRE         = regexp.MustCompile(`("[^"\\]*(?:\\.[^"\\]*)*"\s*:\s*)"[^"\\]*(?:\\.[^"\\]*)*"?`)
)

// String returns s with every credential it recognises replaced by Mark.
// A hex dump (client-go's form for protobuf bodies) is decoded first and,
// when the bytes hold a credential or a Secret, replaced as a whole.
func String(s string) string {
	if b, ok := fromHexDump(s); ok {
		if holdsCredentials(b) {
			return fmt.Sprintf("%s (binary body of %d bytes with credentials or Secret data)", Mark, len(b))
		}
		return s
	}
	if strings.Contains(s, `"kind":"Secret`) {
		s = secretDataRE.ReplaceAllStringFunc(s, func(m string) string {
			return kvRE.ReplaceAllString(m, `${1}"`+Mark+`"`)
		})
	}
	s = pemKeyRE.ReplaceAllString(s, Mark)
	s = jwtRE.ReplaceAllString(s, Mark)
	s = b64JWTRE.ReplaceAllString(s, Mark)
	s = b64PEMRE.ReplaceAllStringFunc(s, func(m string) string {
		head := m[:min(len(m), 64)&^3]
		b, _ := base64.StdEncoding.DecodeString(head)
		if strings.Contains(string(b), "PRIVATE") {
			return Mark
		}
		return m
	})
	return s
}

// Protobuf TypeMeta of a Secret or SecretList: field 2 (kind), length, name.
var secretKinds = []string{"\x12\x06Secret", "\x12\x0aSecretList"}

func holdsCredentials(b []byte) bool {
	t := string(b)
	for _, k := range secretKinds {
		if strings.Contains(t, k) {
			return true
		}
	}
	return String(t) != t
}

var hexLineRE = regexp.MustCompile(`^\s*[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2})*[0-9a-f]{2})`)

// fromHexDump parses the output of encoding/hex.Dump (leading whitespace
// and a trailing "[truncated N chars]" allowed); ok is false for any other
// text.
func fromHexDump(s string) ([]byte, bool) {
	var out []byte
	lines := 0
	all := strings.Split(strings.TrimRight(s, " \t\n"), "\n")
	for i, line := range all {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := hexLineRE.FindStringSubmatch(line)
		if m == nil {
			// client-go may cut the dump anywhere in its last line.
			if i == len(all)-1 && lines > 0 {
				break
			}
			return nil, false
		}
		for _, h := range strings.Fields(m[1]) {
			var c byte
			if _, err := fmt.Sscanf(h, "%02x", &c); err != nil {
				return nil, false
			}
			out = append(out, c)
		}
		lines++
	}
	return out, lines > 0
}

func value(v any) any {
	switch x := v.(type) {
	case string:
		return String(x)
	case []byte:
		return String(string(x))
	case error:
		return String(x.Error())
	case fmt.Stringer:
		return String(x.String())
	}
	return v
}

func values(vs []any) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = value(v)
	}
	return out
}

// Filter is a klog.LogFilter that redacts every logged value.
type Filter struct{}

var _ klog.LogFilter = Filter{}

func (Filter) Filter(args []any) []any { return values(args) }

func (Filter) FilterF(format string, args []any) (string, []any) {
	return String(format), values(args)
}

func (Filter) FilterS(msg string, kvs []any) (string, []any) {
	out := make([]any, len(kvs))
	for i, v := range kvs {
		if i%2 == 0 {
			out[i] = v // keys
		} else {
			out[i] = value(v)
		}
	}
	return String(msg), out
}
