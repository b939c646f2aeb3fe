package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// payloadJSON is claims() as JSON text, for hand-made tokens.
func payloadJSON(mut ...func(map[string]any)) string {
	b, _ := json.Marshal(claims(mut...))
	return string(b)
}

// printable reports whether s is safe to print to a terminal: valid UTF-8,
// one line, no control or format characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

func TestVerifyRejectsHostileEncodings(t *testing.T) {
	kid := kidOf(&rsaKey.PublicKey)
	ks := keysetOf(&rsaKey.PublicKey, &ecKeys["ES256"].PublicKey)
	good := sign(rsaKey, hdr("RS256", kid), claims())
	p := strings.Split(good, ".")
	h := func(extra string) string { return fmt.Sprintf(`{"alg":"RS256","kid":%q%s}`, kid, extra) }
	future, past := testNow.Add(time.Hour).Unix(), testNow.Add(-time.Hour).Unix()
	ecK := ecKeys["ES256"]
	derSig := func() string {
		in := seg(hdr("ES256", kidOf(&ecK.PublicKey)), claims())
		sum := hashFor("ES256", []byte(in))
		sig, _ := ecdsa.SignASN1(rand.Reader, ecK, sum)
		return in + "." + b64(sig)
	}()
	for name, tc := range map[string]struct{ token, want string }{
		// Member names are compared after JSON unescaping, as every
		// other JSON reader does.
		"escaped jku":   {signRaw(rsaKey, h(`,"j\u006bu":"https://evil.example/jwks"`), payloadJSON()), `"jku"`},
		"escaped x5c":   {signRaw(rsaKey, h(`,"x5\u0063":["MIIB"]`), payloadJSON()), `"x5c"`},
		"escaped crit":  {signRaw(rsaKey, h(`,"cr\u0069t":["exp"]`), payloadJSON()), "critical extensions"},
		"crit not list": {signRaw(rsaKey, h(`,"crit":7`), payloadJSON()), "critical extensions (a JSON number)"},
		// With duplicates, readers disagree on which value counts: the
		// last alg here is RS256 and the signature is good.
		"duplicate alg":       {signRaw(rsaKey, fmt.Sprintf(`{"alg":"HS256","kid":%q,"alg":"RS256"}`, kid), payloadJSON()), `member "alg" appears twice`},
		"escaped duplicate":   {signRaw(rsaKey, fmt.Sprintf(`{"alg":"HS256","kid":%q,"\u0061lg":"RS256"}`, kid), payloadJSON()), `member "alg" appears twice`},
		"duplicate exp":       {signRaw(rsaKey, h(""), fmt.Sprintf(`{"iss":"https://issuer.example","aud":"vault","exp":%d,"exp":%d}`, past, future)), `member "exp" appears twice`},
		"duplicate in k8s.io": {signRaw(rsaKey, h(""), fmt.Sprintf(`{"iss":"https://issuer.example","aud":"vault","exp":%d,"kubernetes.io":{"namespace":"a","namespace":"b"}}`, future)), `member "namespace" twice`},
		"alg not a string":    {signRaw(rsaKey, fmt.Sprintf(`{"alg":["RS256"],"kid":%q}`, kid), payloadJSON()), "header alg is not a string"},
		"kid not a string":    {signRaw(rsaKey, `{"alg":"RS256","kid":1}`, payloadJSON()), "header kid is not a string"},
		"aud holds a number":  {signRaw(rsaKey, h(""), fmt.Sprintf(`{"iss":"https://issuer.example","aud":["vault",1],"exp":%d}`, future)), "aud holds a non-string"},
		"many bad audiences":  {signRaw(rsaKey, h(""), fmt.Sprintf(`{"iss":"https://issuer.example","exp":%d,"aud":[%s"a","b","c","d","e","f"]}`, future, strings.Repeat("1,", 1000))), `audience ["a", "b", "c", "d", "e", ... (1 more)] does not include "vault"`},
		"exp out of range":    {signRaw(rsaKey, h(""), `{"iss":"https://issuer.example","aud":"vault","exp":1e300}`), "exp is out of range"},
		// Compact serialization only: one protected header, one signature.
		"JSON serialization":  {fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, p[0], p[1], p[2]), "want 3 dot-separated parts"},
		"general JSON":        {fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p[1], p[0], p[2]), "want 3 dot-separated parts"},
		"two signatures":      {good + "." + p[2], "want 3 dot-separated parts, found 4"},
		"ES256 DER signature": {derSig, "signature does not verify"},
		// exp may only be missing under the legacy issuer.
		"legacy claims, bound issuer, no exp": {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) {
			delete(c, "exp")
			c["kubernetes.io/serviceaccount/secret.name"] = "x"
		})), "no exp"},
	} {
		t.Run(name, func(t *testing.T) {
			r := Verify(tc.token, ks, opts)
			if r.Valid() {
				t.Fatalf("accepted")
			}
			if !strings.Contains(strings.Join(r.Errors, "\n"), tc.want) {
				t.Fatalf("errors %q do not mention %q", r.Errors, tc.want)
			}
			if len(r.Errors) > 4 || len(strings.Join(r.Errors, "")) > 1000 {
				t.Fatalf("%d errors, %d bytes: messages must stay short", len(r.Errors), len(strings.Join(r.Errors, "")))
			}
		})
	}
}

func TestVerifyKeyAlgorithmMustMatch(t *testing.T) {
	// A JWKS key that names another algorithm is not used for RS256, even
	// though its type fits.
	ks := keysetOf(&rsaKey.PublicKey)
	ks.Keys[0].Algorithm = "RS512"
	kid := ks.Keys[0].ID
	if r := Verify(sign(rsaKey, hdr("RS256", kid), claims()), ks, opts); r.Valid() || !strings.Contains(strings.Join(r.Errors, ";"), "cannot check RS256") {
		t.Fatalf("kid: valid=%v errors=%q", r.Valid(), r.Errors)
	}
	if r := Verify(sign(rsaKey, hdr("RS256", ""), claims()), ks, opts); r.Valid() || !strings.Contains(strings.Join(r.Errors, ";"), "none of the 1 keys") {
		t.Fatalf("no kid: valid=%v errors=%q", r.Valid(), r.Errors)
	}
}

func TestVerifyKeyTypeMustMatch(t *testing.T) {
	// Keys from sources that do not name an algorithm: the type decides.
	ks := keysetOf(&rsaKey.PublicKey, &ecKeys["ES256"].PublicKey)
	for i := range ks.Keys {
		ks.Keys[i].Algorithm = ""
	}
	rsaKid, ecKid := ks.Keys[0].ID, ks.Keys[1].ID
	// RSA PKCS#1 v1.5 signatures (SHA-256, like ES256) under ES256 headers.
	// A real signature by the P-256 key over a SHA-384 digest (ECDSA
	// truncates it): only the curve check stops it.
	p256 := ecKeys["ES256"]
	in := seg(hdr("ES384", ecKid), claims())
	r, sv, _ := ecdsa.Sign(rand.Reader, p256, hashFor("ES384", []byte(in)))
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	es384OnP256 := in + "." + b64(sig)
	base := sign(rsaKey, hdr("RS256", rsaKid), claims())
	for name, tc := range map[string]struct{ token, want string }{
		"RSA key, ES256 header": {sign(rsaKey, hdr("ES256", rsaKid), claims()), "cannot check ES256 signatures (it is an RSA key)"},
		// Only the P-256 key is tried, and it does not match.
		"RSA key, ES256, no kid":  {sign(rsaKey, hdr("ES256", ""), claims()), "any of the 1 keys"},
		"P-256 key, ES384 header": {es384OnP256, "cannot check ES384 signatures (it is an EC P-256 key)"},
		"EC key, RS256 header":    {sign(rsaKey, hdr("RS256", ecKid), claims()), "cannot check RS256 signatures (it is an EC P-256 key)"},
	} {
		r := Verify(tc.token, ks, opts)
		if r.Valid() || !strings.Contains(strings.Join(r.Errors, ";"), tc.want) {
			t.Errorf("%s: valid=%v errors=%q", name, r.Valid(), r.Errors)
		}
	}
	if r := Verify(base, ks, opts); !r.Valid() {
		t.Fatalf("control: %q", r.Errors)
	}
}

func TestVerifyAudienceAsString(t *testing.T) {
	ks := keysetOf(&rsaKey.PublicKey)
	kid := kidOf(&rsaKey.PublicKey)
	if r := Verify(sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["aud"] = "vault" })), ks, opts); !r.Valid() {
		t.Fatalf("aud string: %q", r.Errors)
	}
	r := Verify(sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["aud"] = "other" })), ks, opts)
	if r.Valid() || !strings.Contains(strings.Join(r.Errors, ";"), `audience "other" does not include "vault"`) {
		t.Fatalf("wrong aud string: %q", r.Errors)
	}
}

func TestVerifyWithoutKeys(t *testing.T) {
	tok := sign(rsaKey, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims(func(c map[string]any) { c["iss"] = "https://evil.example" }))
	for _, ks := range []*KeySet{nil, {}} {
		r := Verify(tok, ks, opts)
		if r.Valid() || len(r.Errors) != 2 || r.Errors[0] != "no verification keys" {
			t.Fatalf("errors %q, want no keys and the issuer", r.Errors)
		}
	}
}

func TestMessagesNeverQuoteTokenOrKeys(t *testing.T) {
	kid := kidOf(&rsaKey.PublicKey)
	ks := keysetOf(&rsaKey.PublicKey)
	modulus := b64(rsaKey.N.Bytes())
	// Bad JSON whose text a parser might copy into its message.
	badJSON := "{\"sub\":\"SECRET-CLAIM\x1b[2J\" \"exp\":1}"
	_, err := Decode("e30." + b64([]byte(badJSON)) + ".")
	if err == nil || strings.Contains(err.Error(), "SECRET") || !printable(err.Error()) {
		t.Fatalf("Decode error %q quotes the payload", err)
	}
	_, err = Decode(b64([]byte("{\"alg\":\x01}")) + ".e30.")
	if err == nil || !printable(err.Error()) {
		t.Fatalf("Decode error %q is not printable", err)
	}
	// Attacker-chosen strings with terminal escapes and bidi overrides.
	evil := "\x1b]0;pwned\x07\u202e\u009b31m"
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	tok := signRaw(rsaKey, fmt.Sprintf(`{"alg":"RS256","kid":%s,"crit":[%s, 1]}`, js(kid+evil), js(evil)), fmt.Sprintf(`{"iss":%s,"aud":[%s],"exp":1}`, js(evil), js(evil)))
	r := Verify(tok, ks, opts)
	if r.Valid() || len(r.Errors) < 4 {
		t.Fatalf("errors %q", r.Errors)
	}
	for _, m := range append(r.Errors, r.Warnings...) {
		if !printable(m) || strings.Contains(m, modulus[:16]) || strings.Contains(m, tok[len(tok)-20:]) {
			t.Errorf("unsafe message %q", m)
		}
	}
	tok = signRaw(rsaKey, `{"alg":"RS256"}`, fmt.Sprintf(`{"iss":%s}`, js(evil)))
	if r := Verify(tok, ks, Options{Issuers: []string{"x"}, Now: opts.Now}); r.Valid() {
		t.Fatal("accepted")
	} else {
		for _, m := range r.Errors {
			if !printable(m) {
				t.Errorf("unsafe message %q", m)
			}
		}
	}
}

func TestParseJWKSFilters(t *testing.T) {
	rsaJWK, _ := keysetOf(&rsaKey.PublicKey).MarshalJWKS()
	one := strings.TrimSuffix(strings.TrimPrefix(string(rsaJWK), `{"keys":[`), `]}`)
	enc := strings.Replace(one, `"use":"sig"`, `"use":"enc"`, 1)
	okp := `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	future := `{"kty":"FUTURE","kid":"f"}`
	ks, err := ParseJWKS([]byte(`{"keys":[` + enc + "," + okp + "," + future + "," + one + `]}`))
	if err != nil || len(ks.Keys) != 1 || ks.Keys[0].ID != kidOf(&rsaKey.PublicKey) {
		t.Fatalf("want only the signing RSA key: %+v %v", ks, err)
	}
	for _, priv := range []string{`"d":"AQAB"`, `"oth":[]`, `"qi":"AQAB"`} {
		doc := `{"keys":[` + strings.Replace(one, `"use":"sig"`, `"use":"sig",`+priv, 1) + `]}`
		if _, err := ParseJWKS([]byte(doc)); err == nil || !strings.Contains(err.Error(), "private key material") {
			t.Errorf("%s: %v", priv, err)
		}
	}
	if _, err := ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)); err == nil || !strings.Contains(err.Error(), `"k"`) {
		t.Errorf("symmetric key: %v", err)
	}
}

func TestMergeDedupesByKid(t *testing.T) {
	a := keysetOf(&rsaKey.PublicKey, &ecKeys["ES256"].PublicKey)
	b := keysetOf(&ecKeys["ES256"].PublicKey, &rsaKey2.PublicKey)
	m := a.Merge(b)
	if len(m.Keys) != 3 || m.Keys[2].ID != kidOf(&rsaKey2.PublicKey) {
		t.Fatalf("merged %d keys", len(m.Keys))
	}
	noKid := &KeySet{Keys: []Key{{Public: &rsaKey.PublicKey}, {Public: &rsaKey.PublicKey}}}
	if n := len(noKid.Merge(nil).Keys); n != 1 {
		t.Fatalf("kid-less duplicates: %d keys", n)
	}
}

func TestFetchDiscoveryEdges(t *testing.T) {
	jwks, _ := keysetOf(&rsaKey.PublicKey).MarshalJWKS()
	var docIssuer, jwksURI string
	var paths []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, docIssuer, jwksURI)
		case "/keys":
			w.Write(jwks)
		case "/huge":
			w.Write([]byte(`{"keys":[` + strings.Repeat(" ", maxDocument) + `]}`))
		case "/gone":
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	// A trailing slash is part of the issuer: the document must repeat it,
	// and the well-known path is not doubled.
	docIssuer, jwksURI = srv.URL+"/", srv.URL+"/keys"
	if _, ks, err := FetchDiscovery(ctx, srv.Client(), srv.URL+"/"); err != nil || len(ks.Keys) != 1 || paths[0] != "/.well-known/openid-configuration" {
		t.Fatalf("trailing slash: %v %v", paths, err)
	}
	if _, _, err := FetchDiscovery(ctx, srv.Client(), srv.URL); err == nil || !strings.Contains(err.Error(), srv.URL+"/") {
		t.Fatalf("issuer without the document's slash accepted: %v", err)
	}
	docIssuer = srv.URL
	for uri, want := range map[string]string{
		srv.URL + "/huge":         "larger than 1 MiB",
		srv.URL + "/gone":         "404",
		"http://127.0.0.1:1/keys": "not an https URL",
		strings.Replace(srv.URL, "https", "file", 1) + "/keys": "not an https URL",
	} {
		jwksURI = uri
		if _, _, err := FetchDiscovery(ctx, srv.Client(), srv.URL); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("jwks_uri %s: %v, want %q", uri, err, want)
		}
	}
}

// A signed token has one spelling. Decode shows padded or non-canonical
// base64url (hand-made input), Verify refuses it; bytes outside the alphabet,
// which Go's decoder would skip if they are CR or LF, are not base64url at all.
func TestNonCanonicalBase64DecodesButNeverVerifies(t *testing.T) {
	kid := kidOf(&rsaKey.PublicKey)
	ks := keysetOf(&rsaKey.PublicKey)
	good := sign(rsaKey, hdr("RS256", kid), claims())
	h, p, s := segments(good)
	bits, ok := withTrailingBits(s)
	if !ok {
		t.Fatal("an RS256 signature (256 bytes) always has unused bits")
	}
	for name, tc := range map[string]struct{ token, want string }{
		"signature padded":         {good + "==", "signature has '=' padding"},
		"header padded, signed so": {signInput(rsaKey, h+"="+"."+p), "header has '=' padding"},
		"signature bits set":       {h + "." + p + "." + bits, "signature has unused bits set"},
		"payload bits set, signed so": {func() string {
			pu, _ := withTrailingBits(b64([]byte(unaligned(payloadJSON()))))
			return signInput(rsaKey, h+"."+pu)
		}(), "payload has unused bits set"},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := Decode(tc.token)
			if err != nil || tok.Claims.Subject != "system:serviceaccount:ns:api" {
				t.Fatalf("Decode: %v", err)
			}
			r := Verify(tc.token, ks, opts)
			if r.Valid() || !strings.Contains(strings.Join(r.Errors, "\n"), tc.want) {
				t.Fatalf("valid=%v errors %q, want %q", r.Valid(), r.Errors, tc.want)
			}
			for _, e := range r.Errors {
				if strings.Contains(e, s[:16]) || strings.Contains(e, p[:16]) {
					t.Fatalf("error quotes the token: %q", e)
				}
			}
		})
	}
	for _, in := range []string{h + "." + p + "." + s[:5] + "\n" + s[5:], h + "." + p + "." + s[:5] + "\r" + s[5:], h[:5] + "\n" + h[5:] + "." + p + "." + s} {
		if _, err := Decode(in); err == nil || !strings.Contains(err.Error(), "bad character at offset 5") {
			t.Errorf("line break inside a segment: %v", err)
		}
	}
	if r := Verify(good, ks, opts); !r.Valid() {
		t.Fatalf("control: %q", r.Errors)
	}
}

func TestVerifyRefusesB64Header(t *testing.T) {
	kid := kidOf(&rsaKey.PublicKey)
	ks := keysetOf(&rsaKey.PublicKey)
	// b64 false over the base64url signing input: a reader that honours
	// RFC 7797 computes another signing input and rejects it, so must we.
	for _, v := range []any{false, true, "false", nil} {
		r := Verify(sign(rsaKey, hdr("RS256", kid, "b64", v), claims()), ks, opts)
		if r.Valid() || !strings.Contains(strings.Join(r.Errors, "\n"), `header carries "b64"`) {
			t.Errorf("b64 %v: valid=%v errors %q", v, r.Valid(), r.Errors)
		}
	}
}
