package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// go-jose v4 is the referee for Verify: every variant below is verified by
// both, with the same keys, algorithm allow-list, issuer, audience, a fixed
// now and no leeway. Verify may accept nothing go-jose rejects except the
// families in acceptedDespiteGoJose; where go-jose accepts and Verify
// rejects, the family must be in stricterThanGoJose. Both lists are checked
// in both directions: an entry that no longer happens fails the test, so
// each names a rule Verify still has.

// acceptedDespiteGoJose: Verify accepts, go-jose rejects.
var acceptedDespiteGoJose = map[string]string{
	"framing: leading space": "Decode trims surrounding whitespace (a token read from a file or a terminal); " +
		"the signature is checked over the trimmed token, so the bytes verified are go-jose's bytes",
	`framing: "Bearer " prefix`: "Decode strips an Authorization-header prefix before parsing; the token behind it is verified as is",
}

// stricterThanGoJose: go-jose accepts, Verify rejects.
var stricterThanGoJose = map[string]string{
	// Claims kube-apiserver always sets, and our own block.
	"exp: missing": "bound tokens always carry exp (only the legacy issuer may omit it); go-jose treats exp as optional",
	"exp: null":    "null is not a NumericDate; go-jose's Claims leave a null exp unset, so for go-jose the token never expires",
	"exp: spelled EXP": "claim names are case-sensitive (RFC 7519 §10.1.1), as in go-jose: this token has no exp, " +
		"which only go-jose allows",
	"exp: 1e13 (year 318857)": "times past 1e12 s (year 33658) are refused as out of range; go-jose allows up to 2^62 s",
	"nbf: -1":                 "times before 1970 are refused as out of range; go-jose allows down to -2^62 s",
	"iat: -1":                 "times before 1970 are refused as out of range; go-jose allows down to -2^62 s",
	"nbf: now+0.5 (fraction)": "RFC 7519 §2 NumericDate may be fractional and Verify keeps the fraction; " +
		"go-jose's NumericDate.UnmarshalJSON truncates to whole seconds, which moves nbf into the past",
	"iat: now+0.5 (fraction)":          "as nbf: go-jose truncates the fraction, Verify keeps it",
	"kubernetes.io: not an object":     "Verify reads the kubernetes.io block and refuses a wrong type; go-jose ignores claims it does not know",
	"kubernetes.io: pod is a string":   "as above, one level down",
	"kubernetes.io: member twice":      "duplicates make JSON readers disagree on which value counts; go-jose does not read this block",
	"legacy claim: secret.name number": "the legacy claims are read and typed; go-jose ignores them",
	"payload: larger than 1 MiB":       "MaxTokenSize caps input; a real token is a few KiB",
	"header: kid null":                 "kid must be a string when present (RFC 7515 §4.1.4); go-jose reads null as absent and then tries every key",
	"header: crit null":                "crit must be a list of names (RFC 7515 §4.1.11); go-jose reads null as absent",
	"header: crit names a missing member": "RFC 7515 §4.1.11: a name in crit must be a member of the header; go-jose only checks names " +
		"against the ones it supports (checkSupportedCritical). Verify refuses any crit",
	"header: crit empty list":                                   "RFC 7515 §4.1.11: producers MUST NOT use []; Verify understands no extension and refuses any crit",
	`header: crit ["b64"], b64 true`:                            "RFC 7797 is supported by go-jose (supportedCritical); kube-apiserver never signs with it and Verify refuses it",
	`header: crit ["b64"], b64 false, unencoded payload signed`: "as above: go-jose verifies the RFC 7797 signing input, Verify refuses b64",
	"header: b64 true":                                          "RFC 7797 §3 makes true the default, but a b64 member is never issued; Verify refuses every b64 member",
	`header: b64 "false" (a string)`:                            "go-jose's getB64 falls back to true on a wrong type; Verify refuses every b64 member",
	"header: b64 null":                                          "go-jose reads null as absent; Verify refuses every b64 member",
	"header: b64 false, unencoded payload signed":               "go-jose honours b64 without crit (computeAuthData), RFC 7797 §6 requires crit; Verify refuses b64",
	"header: jku":                                               "keys are never taken from the token (CONTEXT.md); go-jose ignores jku",
	"header: x5u":                                               "as jku",
	"header: jwk (public, the signing key)":                     "go-jose parses an embedded public jwk (RFC 7515 §4.1.3) but verifies with the caller's key; Verify refuses it",
	"header: x5c (self-signed, the signing key)":                "go-jose parses x5c certificates but verifies with the caller's key; Verify refuses it",
	// Encodings: one token has exactly one spelling, the one it was signed as.
	`encoding: "\n" inside signature`: "Go's base64 decoder skips CR and LF, so go-jose reads the signature without it; " +
		"Verify takes only the base64url alphabet (RFC 7515 §2), so one token has one spelling",
	`encoding: "\r\n" inside signature`:                    "as above",
	`encoding: "\n" before the signature's last character`: "as above",
	`encoding: "\n" inside header, signed without it`:      "go-jose rebuilds the signing input from the decoded header (computeAuthData), dropping the newline; Verify checks the bytes as sent",
	`encoding: "\n" inside payload, signed without it`:     "go-jose rebuilds the signing input from the decoded payload; Verify checks the bytes as sent",
	"encoding: signature trailing bits set":                "RFC 4648 §3.5: Verify refuses non-canonical base64url, so one token has one spelling; Go's decoder (go-jose) ignores the bits",
	"encoding: header trailing bits set, signed canonical": "go-jose re-encodes the decoded header for the signing input, which clears the bits; " +
		"Verify checks the bytes as sent and refuses non-canonical base64url",
	"encoding: payload trailing bits set, signed canonical": "as for the header",
}

type refKey struct {
	name   string
	signer crypto.Signer
	alg    string
	kid    string
}

type variant struct {
	family string
	key    string
	token  string
	// control: both must accept it.
	control bool
}

// member is one claim or header member as raw JSON: name as written
// between the quotes (escapes allowed), value as written.
type member struct{ name, value string }

func object(ms []member) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%s":%s`, m.name, m.value)
	}
	b.WriteByte('}')
	return b.String()
}

// baseClaims are claims() in a fixed order, so a variant can replace,
// drop, repeat or respell one member.
func baseClaims() []member {
	c := claims()
	var ms []member
	for _, n := range []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "kubernetes.io"} {
		v, _ := json.Marshal(c[n])
		ms = append(ms, member{n, string(v)})
	}
	return ms
}

// edit is a change to a member list.
type edit func([]member) []member

func set(name, value string) edit {
	return func(ms []member) []member {
		for i := range ms {
			if ms[i].name == name {
				ms[i].value = value
				return ms
			}
		}
		return append(ms, member{name, value})
	}
}

func drop(name string) edit {
	return func(ms []member) []member {
		out := ms[:0]
		for _, m := range ms {
			if m.name != name {
				out = append(out, m)
			}
		}
		return out
	}
}

func add(name, value string) edit {
	return func(ms []member) []member { return append(ms, member{name, value}) }
}

func rename(from, to string) edit {
	return func(ms []member) []member {
		for i := range ms {
			if ms[i].name == from {
				ms[i].name = to
			}
		}
		return ms
	}
}

func payloadText(edits ...edit) string {
	ms := baseClaims()
	for _, e := range edits {
		ms = e(ms)
	}
	return object(ms)
}

func (k refKey) headerText(edits ...edit) string {
	ms := []member{{"alg", strconv.Quote(k.alg)}, {"kid", strconv.Quote(k.kid)}}
	for _, e := range edits {
		ms = e(ms)
	}
	return object(ms)
}

// signText signs the segments exactly as written.
func (k refKey) signText(h, p string) string { return signInput(k.signer, h+"."+p) }

func (k refKey) token(h, p string) string { return signRaw(k.signer, h, p) }

func selfSignedDER(k crypto.Signer) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sa-signer"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		panic(err)
	}
	return der
}

func jwkJSON(key any) string {
	b, err := jose.JSONWebKey{Key: key}.MarshalJSON()
	if err != nil {
		panic(err)
	}
	return string(b)
}

// refereeVariants builds the variants for one key.
func refereeVariants(k refKey, other refKey) []variant {
	var vs []variant
	addv := func(family, token string) { vs = append(vs, variant{family: family, key: k.name, token: token}) }
	control := func(family, token string) {
		vs = append(vs, variant{family: family, key: k.name, token: token, control: true})
	}
	h0 := k.headerText()
	p0 := payloadText()
	good := k.token(h0, p0)
	gh, gp, gs := segments(good)
	now := testNow.Unix()
	q := strconv.Quote

	// Controls: what kube-apiserver issues, and spellings that mean the same.
	control("control", good)
	control("control: no kid", k.token(k.headerText(drop("kid")), p0))
	control("control: empty kid", k.token(k.headerText(set("kid", `""`)), p0))
	control("control: typ JWT", k.token(k.headerText(set("typ", `"JWT"`)), p0))
	control("control: typ a number", k.token(k.headerText(set("typ", `1`)), p0))
	control("control: unknown header member", k.token(k.headerText(set("x-extra", `{"a":[1,null]}`)), p0))
	control("control: escaped alg name", k.token(k.headerText(rename("alg", `\u0061lg`)), p0))
	control("control: escaped issuer value", k.token(h0, payloadText(set("iss", `"https:\/\/issuer.example"`))))
	control("control: escaped claim name", k.token(h0, payloadText(rename("exp", `\u0065xp`))))
	control("control: whitespace in JSON", k.token(" \t\r\n"+h0+"\n", "\n "+strings.ReplaceAll(p0, ",", " ,\n\t")+" "))
	control("control: unknown claims", k.token(h0, payloadText(set("x", `[1e400,{"a":null},"\ud800"]`))))
	control("control: invalid UTF-8 in sub", k.token(h0, payloadText(set("sub", "\"sys\xff\xfe\""))))
	control("control: aud string", k.token(h0, payloadText(set("aud", `"vault"`))))
	control("control: aud list, match second", k.token(h0, payloadText(set("aud", `["other","vault"]`))))
	control("control: no iat, no nbf", k.token(h0, payloadText(drop("iat"), drop("nbf"))))
	control("control: trailing newline outside the token", good+"\n")

	// Time claims: floats, exponents, strings, out of range.
	e := func(v float64) string { return strconv.FormatFloat(v, 'e', -1, 64) }
	times := map[string]map[string]string{
		"exp": {
			"now":                     fmt.Sprint(now),
			"now-1":                   fmt.Sprint(now - 1),
			"now+0.5 (fraction)":      fmt.Sprintf("%d.5", now),
			"now-0.5 (fraction)":      fmt.Sprintf("%d.5", now-1),
			"now+1h as exponent":      e(float64(now + 3600)),
			"now+1h as E exponent":    strings.ToUpper(e(float64(now + 3600))),
			"now+1h as 0.x e11":       fmt.Sprintf("0.%de11", now+3600),
			"now+1h as string":        q(fmt.Sprint(now + 3600)),
			"null":                    "null",
			"true":                    "true",
			"[now+1h]":                fmt.Sprintf("[%d]", now+3600),
			"{}":                      "{}",
			"-1":                      "-1",
			"0":                       "0",
			"-0":                      "-0",
			"1e13 (year 318857)":      "1e13",
			"1e300":                   "1e300",
			"1e400 (overflows)":       "1e400",
			"2^63":                    "9223372036854775808",
			"leading zero (bad JSON)": "0" + fmt.Sprint(now+3600),
			"plus sign (bad JSON)":    "+" + fmt.Sprint(now+3600),
			"NaN (bad JSON)":          "NaN",
		},
		"nbf": {
			"now":                "" + fmt.Sprint(now),
			"now+1":              fmt.Sprint(now + 1),
			"now+0.5 (fraction)": fmt.Sprintf("%d.5", now),
			"now-0.5 (fraction)": fmt.Sprintf("%d.5", now-1),
			"now-1m as exponent": e(float64(now - 60)),
			"as string":          q(fmt.Sprint(now - 60)),
			"null":               "null",
			"-1":                 "-1",
			"1e13":               "1e13",
			"1e300":              "1e300",
			"false":              "false",
		},
		"iat": {
			"now":                fmt.Sprint(now),
			"now+1":              fmt.Sprint(now + 1),
			"now+0.5 (fraction)": fmt.Sprintf("%d.5", now),
			"now-1m as exponent": e(float64(now - 60)),
			"as string":          q(fmt.Sprint(now - 60)),
			"null":               "null",
			"-1":                 "-1",
			"1e400 (overflows)":  "1e400",
		},
	}
	for claim, vals := range times {
		for name, v := range vals {
			addv(claim+": "+name, k.token(h0, payloadText(set(claim, v))))
		}
	}
	addv("exp: missing", k.token(h0, payloadText(drop("exp"))))
	addv("exp: spelled EXP", k.token(h0, payloadText(rename("exp", "EXP"))))
	addv("exp: twice, past then future", k.token(h0, payloadText(set("exp", fmt.Sprint(now-60)), add("exp", fmt.Sprint(now+60)))))
	addv("exp: twice, once escaped", k.token(h0, payloadText(set("exp", fmt.Sprint(now-60)), add(`\u0065xp`, fmt.Sprint(now+60)))))

	// aud shapes.
	for name, v := range map[string]string{
		"other string": `"other"`, "empty string": `""`, "empty list": `[]`, "null": `null`, "number": `1`,
		"list of numbers": `[1,2]`, "list with a number": `["vault",1]`, "list with null": `["vault",null]`,
		"object": `{"vault":true}`, "true": `true`, "nested list": `[["vault"]]`, "case differs": `["VAULT"]`,
		"escaped": `["v\u0061ult"]`, "duplicate values": `["vault","vault"]`,
	} {
		addv("aud: "+name, k.token(h0, payloadText(set("aud", v))))
	}
	addv("aud: missing", k.token(h0, payloadText(drop("aud"))))
	addv("aud: twice", k.token(h0, payloadText(add("aud", `"other"`))))

	// Other registered claims and duplicates.
	for name, eds := range map[string][]edit{
		"iss: number":             {set("iss", "1")},
		"iss: null":               {set("iss", "null")},
		"iss: list":               {set("iss", `["https://issuer.example"]`)},
		"iss: trailing slash":     {set("iss", `"https://issuer.example/"`)},
		"iss: spelled Iss":        {rename("iss", "Iss")},
		"iss: twice, same value":  {add("iss", `"https://issuer.example"`)},
		"iss: twice, escaped":     {add(`\u0069ss`, `"https://evil.example"`)},
		"sub: number":             {set("sub", "1")},
		"sub: object":             {set("sub", `{}`)},
		"jti: number":             {set("jti", "7")},
		"unknown claim twice":     {add("x", "1"), add("x", "2")},
		"unknown claim, bad JSON": {set("x", "[1,]")},
	} {
		addv(name, k.token(h0, payloadText(eds...)))
	}
	addv("kubernetes.io: not an object", k.token(h0, payloadText(set("kubernetes.io", `"ns"`))))
	addv("kubernetes.io: pod is a string", k.token(h0, payloadText(set("kubernetes.io", `{"namespace":"ns","pod":"api-0"}`))))
	addv("kubernetes.io: member twice", k.token(h0, payloadText(set("kubernetes.io", `{"namespace":"ns","namespace":"kube-system"}`))))
	addv("legacy claim: secret.name number", k.token(h0, payloadText(set("kubernetes.io/serviceaccount/secret.name", "1"))))
	control("payload: 100 nested arrays", k.token(h0, payloadText(set("x", strings.Repeat("[", 100)+strings.Repeat("]", 100)))))
	addv("payload: 10001 nested arrays", k.token(h0, payloadText(set("x", strings.Repeat("[", 10001)+strings.Repeat("]", 10001)))))
	addv("payload: larger than 1 MiB", k.token(h0, payloadText(set("x", q(strings.Repeat("a", MaxTokenSize))))))
	for name, p := range map[string]string{
		"list": `[]`, "null": `null`, "string": `"x"`, "number": `1`, "empty object": `{}`, "empty": ``,
		"unterminated": `{"iss":"https://issuer.example"`, "trailing comma": p0[:len(p0)-1] + `,}`,
		"trailing garbage": p0 + `x`, "two objects": p0 + p0, "BOM": "\ufeff" + p0, "raw control character in a string": strings.Replace(p0, `"j-1"`, "\"j\x01\"", 1),
		"raw DEL in a string": strings.Replace(p0, `"j-1"`, "\"j\x7f\"", 1), "lone surrogate escape in jti": strings.Replace(p0, `"j-1"`, `"\udc00"`, 1), "single quotes": strings.ReplaceAll(p0, `"`, `'`),
	} {
		addv("payload: "+name, k.token(h0, p))
	}

	// Header oddities.
	kidOther := q(other.kid)
	for name, h := range map[string]string{
		"header: kid number":                         k.headerText(set("kid", "1")),
		"header: kid null":                           k.headerText(set("kid", "null")),
		"header: kid list":                           k.headerText(set("kid", "["+q(k.kid)+"]")),
		"header: kid object":                         k.headerText(set("kid", "{}")),
		"header: kid true":                           k.headerText(set("kid", "true")),
		"header: kid unknown":                        k.headerText(set("kid", `"no-such-key"`)),
		"header: kid of another key":                 k.headerText(set("kid", kidOther)),
		"header: kid twice":                          k.headerText(add("kid", kidOther)),
		"header: alg twice":                          k.headerText(set("alg", `"HS256"`), add("alg", q(k.alg))),
		"header: alg twice, escaped":                 k.headerText(add(`\u0061lg`, q(k.alg))),
		"header: alg null":                           k.headerText(set("alg", "null")),
		"header: alg number":                         k.headerText(set("alg", "256")),
		"header: alg missing":                        k.headerText(drop("alg")),
		"header: alg lowercase":                      k.headerText(set("alg", q(strings.ToLower(k.alg)))),
		"header: alg with space":                     k.headerText(set("alg", q(k.alg+" "))),
		"header: alg of the other key":               k.headerText(set("alg", q(other.alg))),
		"header: crit unknown name":                  k.headerText(set("crit", `["exp"]`), set("exp", "1")),
		"header: crit escaped name":                  k.headerText(set(`cr\u0069t`, `["exp"]`)),
		"header: crit null":                          k.headerText(set("crit", "null")),
		"header: crit empty list":                    k.headerText(set("crit", "[]")),
		"header: crit a string":                      k.headerText(set("crit", `"b64"`), set("b64", "true")),
		"header: crit holds a number":                k.headerText(set("crit", `[1]`)),
		"header: crit names a missing member":        k.headerText(set("crit", `["b64"]`)),
		`header: crit ["b64"], b64 true`:             k.headerText(set("crit", `["b64"]`), set("b64", "true")),
		"header: b64 true":                           k.headerText(set("b64", "true")),
		"header: b64 false, encoded payload signed":  k.headerText(set("b64", "false")),
		`header: b64 "false" (a string)`:             k.headerText(set("b64", `"false"`)),
		"header: b64 null":                           k.headerText(set("b64", "null")),
		"header: b64 twice":                          k.headerText(set("b64", "true"), add("b64", "false")),
		"header: jku":                                k.headerText(set("jku", `"https://evil.example/jwks"`)),
		"header: x5u":                                k.headerText(set("x5u", `"https://evil.example/cert.pem"`)),
		"header: jwk (public, the signing key)":      k.headerText(set("jwk", jwkJSON(k.signer.Public()))),
		"header: jwk (private)":                      k.headerText(set("jwk", jwkJSON(k.signer))),
		"header: jwk not a key":                      k.headerText(set("jwk", `{"kty":"RSA"}`)),
		"header: x5c (self-signed, the signing key)": k.headerText(set("x5c", "["+q(base64.StdEncoding.EncodeToString(selfSignedDER(k.signer)))+"]")),
		"header: x5c not a certificate":              k.headerText(set("x5c", `["MIIB"]`)),
		"header: x5c a string":                       k.headerText(set("x5c", `"MIIB"`)),
		"header: list":                               `[]`,
		"header: null":                               `null`,
		"header: empty":                              ``,
		"header: empty object":                       `{}`,
		"header: trailing garbage":                   h0 + "x",
	} {
		addv(name, k.token(h, p0))
	}
	// RFC 7797 signing input: the payload as it is, not base64url.
	addv(`header: crit ["b64"], b64 false, unencoded payload signed`, func() string {
		h := k.headerText(set("crit", `["b64"]`), set("b64", "false"))
		return b64([]byte(h)) + "." + b64([]byte(p0)) + "." + sigOf(signInput(k.signer, b64([]byte(h))+"."+p0))
	}())
	addv("header: b64 false, unencoded payload signed", func() string {
		h := k.headerText(set("b64", "false"))
		return b64([]byte(h)) + "." + b64([]byte(p0)) + "." + sigOf(signInput(k.signer, b64([]byte(h))+"."+p0))
	}())

	// Algorithms outside the allow-list, with real signatures where one exists.
	pubDER, _ := x509.MarshalPKIXPublicKey(k.signer.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	for name, alg := range map[string]string{"alg: none": "none", "alg: HS256, public key as secret": "HS256", "alg: PS256": "PS256"} {
		h := k.headerText(set("alg", q(alg)))
		in := b64([]byte(h)) + "." + b64([]byte(p0))
		var sig []byte
		switch alg {
		case "HS256":
			m := hmac.New(sha256.New, pubPEM)
			m.Write([]byte(in))
			sig = m.Sum(nil)
		case "PS256":
			if rk, ok := k.signer.(*rsa.PrivateKey); ok {
				sum := sha256.Sum256([]byte(in))
				sig, _ = rsa.SignPSS(rand.Reader, rk, crypto.SHA256, sum[:], nil)
			}
		}
		addv(name, in+"."+b64(sig))
	}
	addv("alg: none, genuine signature", k.headerTextToken("none", p0, gs))

	// Signatures: wrong, truncated, malformed.
	raw, _ := base64.RawURLEncoding.DecodeString(gs)
	flip := append([]byte(nil), raw...)
	flip[len(flip)/2] ^= 1
	addv("signature: one bit flipped", gh+"."+gp+"."+b64(flip))
	addv("signature: empty", gh+"."+gp+".")
	addv("signature: last character dropped", gh+"."+gp+"."+gs[:len(gs)-1])
	addv("signature: last 4 characters dropped", gh+"."+gp+"."+gs[:len(gs)-4])
	addv("signature: one byte longer", gh+"."+gp+"."+b64(append([]byte{0}, raw...)))
	addv("signature: twice", gh+"."+gp+"."+gs+gs)
	addv("signature: of another payload", gh+"."+b64([]byte(payloadText(set("sub", `"system:serviceaccount:kube-system:admin"`))))+"."+gs)
	addv("signature: by another key, same kid", gh+"."+gp+"."+sigOf(other.signText(gh, gp)))
	addv("signature: zeros", gh+"."+gp+"."+b64(make([]byte, len(raw))))
	if ek, ok := k.signer.(*ecdsa.PrivateKey); ok {
		size := len(raw) / 2
		r, s := new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:])
		swapped := append(append([]byte(nil), raw[size:]...), raw[:size]...)
		addv("signature: EC r and s swapped", gh+"."+gp+"."+b64(swapped))
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		addv("signature: EC as DER", gh+"."+gp+"."+b64(der))
		n := ek.Curve.Params().N
		highS := make([]byte, 2*size)
		r.FillBytes(highS[:size])
		new(big.Int).Sub(n, s).FillBytes(highS[size:])
		// ECDSA signatures are malleable: (r, n-s) verifies too, in Go's
		// crypto/ecdsa and so in both verifiers.
		control("signature: EC high-S twin", gh+"."+gp+"."+b64(highS))
		rn := make([]byte, 2*size)
		n.FillBytes(rn[:size])
		copy(rn[size:], raw[size:])
		addv("signature: EC r = n", gh+"."+gp+"."+b64(rn))
	}

	// Base64url: padding, alphabet, whitespace, trailing bits.
	addv(`encoding: signature "=" padded`, good+"=")
	addv(`encoding: signature "==" padded`, good+"==")
	addv(`encoding: header "=" padded, signed with it`, k.signText(gh+"=", gp))
	addv(`encoding: payload "==" padded, signed with it`, k.signText(gh, gp+"=="))
	addv(`encoding: header "=" padded, signed without it`, gh+"=."+gp+"."+gs)
	addv("encoding: signature in the +/ alphabet", gh+"."+gp+"."+toStd(gs))
	addv("encoding: signature standard base64, padded", gh+"."+gp+"."+base64.StdEncoding.EncodeToString(raw))
	pstd := withURLChars(p0)
	addv("encoding: payload in the +/ alphabet, signed with it", k.signText(gh, toStd(b64([]byte(pstd)))))
	addv("framing: leading space", " "+good)
	addv(`framing: "Bearer " prefix`, "Bearer "+good)
	addv(`encoding: "\n" before the signature's last character`, gh+"."+gp+"."+gs[:len(gs)-1]+"\n"+gs[len(gs)-1:])
	addv(`encoding: "\n" inside signature`, gh+"."+gp+"."+gs[:10]+"\n"+gs[10:])
	addv(`encoding: "\r\n" inside signature`, gh+"."+gp+"."+gs[:10]+"\r\n"+gs[10:])
	addv(`encoding: " " inside signature`, gh+"."+gp+"."+gs[:10]+" "+gs[10:])
	addv(`encoding: "\t" inside signature`, gh+"."+gp+"."+gs[:10]+"\t"+gs[10:])
	addv(`encoding: "\n" inside header, signed without it`, gh[:4]+"\n"+gh[4:]+"."+gp+"."+gs)
	addv(`encoding: "\n" inside header, signed with it`, k.signText(gh[:4]+"\n"+gh[4:], gp))
	addv(`encoding: "\n" inside payload, signed without it`, gh+"."+gp[:4]+"\n"+gp[4:]+"."+gs)
	addv(`encoding: "\n" inside payload, signed with it`, k.signText(gh, gp[:4]+"\n"+gp[4:]))
	addv(`encoding: "." inside payload`, k.signText(gh, gp[:4]+"."+gp[4:]))
	if s, ok := withTrailingBits(gs); ok {
		addv("encoding: signature trailing bits set", gh+"."+gp+"."+s)
	}
	hu, pu := b64([]byte(unaligned(h0))), b64([]byte(unaligned(p0)))
	hb, _ := withTrailingBits(hu)
	pb, _ := withTrailingBits(pu)
	addv("encoding: header trailing bits set, signed canonical", hb+"."+pu+"."+sigOf(k.signText(hu, pu)))
	addv("encoding: header trailing bits set, signed with them", k.signText(hb, pu))
	addv("encoding: payload trailing bits set, signed canonical", hu+"."+pb+"."+sigOf(k.signText(hu, pu)))
	addv("encoding: payload trailing bits set, signed with them", k.signText(hu, pb))

	// Structure.
	addv("structure: four parts", good+"."+gs)
	addv("structure: two parts", gh+"."+gp)
	addv("structure: empty", "")
	addv("structure: dots only", "..")
	addv("structure: JSON serialization", fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, gh, gp, gs))
	return vs
}

func (k refKey) headerTextToken(alg, p, sig string) string {
	return b64([]byte(k.headerText(set("alg", strconv.Quote(alg))))) + "." + b64([]byte(p)) + "." + sig
}

func sigOf(tok string) string { return tok[strings.LastIndexByte(tok, '.')+1:] }

func toStd(s string) string { return strings.NewReplacer("-", "+", "_", "/").Replace(s) }

// withURLChars adds a claim whose base64url form holds '-' and '_', so
// that the +/ alphabet spells it differently.
func withURLChars(p string) string {
	for pad := ""; ; pad += " " {
		q := p[:len(p)-1] + `,"x":"???>>>~~~"` + pad + "}"
		if strings.ContainsAny(b64([]byte(q)), "-_") {
			return q
		}
	}
}

var refereeAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512}

// goJoseVerdict verifies tok the way a go-jose v4 user would: ParseSigned
// with the allow-list, Claims with the key, ValidateWithLeeway with no
// leeway. A token that names a kid gets go-jose's own JWKS lookup
// (tryJWKS); one without a kid is tried against every key, as kube-apiserver
// does for tokens minted before 1.16 and as Verify does (go-jose refuses a
// JWKS lookup without kid, so the caller has to loop).
func goJoseVerdict(tok string, ks *KeySet, now time.Time) error {
	parsed, err := josejwt.ParseSigned(tok, refereeAlgorithms)
	if err != nil {
		return err
	}
	var keys []any
	if parsed.Headers[0].KeyID != "" {
		var set jose.JSONWebKeySet
		for _, k := range ks.Keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		}
		keys = []any{set}
	} else {
		for _, k := range ks.Keys {
			keys = append(keys, k.Public)
		}
	}
	for _, key := range keys {
		var c josejwt.Claims
		if err = parsed.Claims(key, &c); err == nil {
			return c.ValidateWithLeeway(josejwt.Expected{
				Issuer: "https://issuer.example", AnyAudience: josejwt.Audience{"vault"}, Time: now,
			}, 0)
		}
	}
	return err
}

func refereeKeys() []refKey {
	ks := []refKey{{name: "RSA", signer: rsaKey, alg: "RS256"}}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		ks = append(ks, refKey{name: ecKeys[alg].Curve.Params().Name, signer: ecKeys[alg], alg: alg})
	}
	for i := range ks {
		ks[i].kid = kidOf(ks[i].signer.Public())
	}
	return ks
}

// TestVerifyAcceptsOnlyWhatGoJoseAccepts: Verify accepts no variant go-jose
// rejects outside acceptedDespiteGoJose, every variant go-jose accepts and
// Verify rejects is in stricterThanGoJose, every entry of both lists still
// happens, and the controls pass both (a referee that rejects everything
// would prove nothing).
func TestVerifyAcceptsOnlyWhatGoJoseAccepts(t *testing.T) {
	keys := refereeKeys()
	var pubs []crypto.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.signer.Public())
	}
	ks := keysetOf(pubs...)
	var vs []variant
	for i, k := range keys {
		vs = append(vs, refereeVariants(k, keys[(i+1)%len(keys)])...)
	}
	strict := Options{Issuers: []string{"https://issuer.example"}, Audiences: []string{"vault"}, Now: func() time.Time { return testNow }}
	lenientSeen, stricterSeen := map[string]bool{}, map[string]bool{}
	var bothAccept, bothReject, onlyOurs, onlyTheirs int
	for _, v := range vs {
		r := Verify(v.token, ks, strict)
		ours := r.Valid()
		jerr := goJoseVerdict(v.token, ks, testNow)
		theirs := jerr == nil
		name := v.family + " [" + v.key + "]"
		switch {
		case v.control && !(ours && theirs):
			t.Errorf("%s: control not accepted by both: pkg/jwt %v (%q), go-jose %v", name, ours, r.Errors, clip(fmt.Sprint(jerr)))
		case ours && theirs:
			bothAccept++
		case !ours && !theirs:
			bothReject++
		case ours:
			onlyOurs++
			lenientSeen[v.family] = true
			if _, ok := acceptedDespiteGoJose[v.family]; !ok {
				t.Errorf("%s: pkg/jwt accepts what go-jose rejects (%s)", name, clip(jerr.Error()))
			}
		default:
			onlyTheirs++
			stricterSeen[v.family] = true
			if _, ok := stricterThanGoJose[v.family]; !ok {
				t.Errorf("%s: go-jose accepts what pkg/jwt rejects (%q); list it in stricterThanGoJose with the reason", name, r.Errors)
			}
		}
	}
	for f := range acceptedDespiteGoJose {
		if !lenientSeen[f] {
			t.Errorf("acceptedDespiteGoJose lists %q, but no such variant is accepted by pkg/jwt and rejected by go-jose", f)
		}
	}
	for f := range stricterThanGoJose {
		if !stricterSeen[f] {
			t.Errorf("stricterThanGoJose lists %q, but no such variant is accepted by go-jose and rejected by pkg/jwt", f)
		}
	}
	t.Logf("%d variants over %d keys: %d accepted by both, %d rejected by both, %d accepted only by go-jose (%d families), %d only by pkg/jwt (%d families)",
		len(vs), len(keys), bothAccept, bothReject, onlyTheirs, len(stricterSeen), onlyOurs, len(lenientSeen))
}
