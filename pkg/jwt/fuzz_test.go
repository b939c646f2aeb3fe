package jwt

import (
	"strings"
	"testing"
)

// FuzzDecodeVerify feeds arbitrary input to Decode and Verify. Neither may
// panic, and Verify may only accept a token that the test key really signed:
// the signing input must be one the seeds signed, byte for byte.
func FuzzDecodeVerify(f *testing.F) {
	kid := kidOf(&rsaKey.PublicKey)
	ks := keysetOf(&rsaKey.PublicKey, &ecKeys["ES256"].PublicKey)
	signed := map[string]bool{}
	for _, tok := range []string{
		sign(rsaKey, hdr("RS256", kid), claims()),
		sign(rsaKey, hdr("RS256", ""), claims()),
		sign(ecKeys["ES256"], hdr("ES256", kidOf(&ecKeys["ES256"].PublicKey)), claims()),
	} {
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
		f.Add(tok)
	}
	f.Add(seg(hdr("none", kid), claims()) + ".")
	f.Add(sign(rsaKey2, hdr("RS256", kid), claims()))
	f.Add(sign(rsaKey, hdr("RS256", kid, "jku", "https://x"), claims()))
	f.Add(signRaw(rsaKey, `{"alg":"HS256","alg":"RS256"}`, payloadJSON()))
	f.Add(signRaw(rsaKey, `{"alg":"RS256","j\u006bu":"x"}`, payloadJSON()))
	f.Add("e30." + b64([]byte("{\"sub\":\"\x1b[2J\" 1}")) + ".")
	f.Add("e30.e30.")
	f.Add("...")
	f.Add("Bearer a.b.c")
	f.Fuzz(func(t *testing.T, in string) {
		// Decode's reader and encoding/json (used for display) must agree
		// on what is a JSON object.
		tok, err := Decode(in)
		if err == nil && (tok.HeaderMap() == nil || tok.PayloadMap() == nil) {
			t.Fatalf("Decode accepted a header or payload that encoding/json rejects: %q %q", tok.headerJSON, tok.payloadJSON)
		}
		if err != nil && !printable(err.Error()) {
			t.Fatalf("Decode error is not printable: %q", err)
		}
		r := Verify(in, ks, opts)
		if r.Valid() && !signed[string(r.Token.signingInput)] {
			t.Fatalf("accepted a token the test key never signed: %q", r.Token.signingInput)
		}
		// Messages reach terminals: one line, no control or format
		// characters, whatever the token holds.
		for _, e := range append(r.Errors, r.Warnings...) {
			if !printable(e) {
				t.Fatalf("unprintable message %q", e)
			}
		}
	})
}
