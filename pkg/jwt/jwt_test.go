package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/internal/testsigner"
)

var (
	testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	rsaKey  = mustRSA()
	rsaKey2 = mustRSA()
	ecKeys  = map[string]*ecdsa.PrivateKey{
		"ES256": mustEC(elliptic.P256()), "ES384": mustEC(elliptic.P384()), "ES512": mustEC(elliptic.P521()),
	}
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// b64url is the base64url alphabet (RFC 4648 §5), written out here rather
// than taken from decode.go.
const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// withTrailingBits sets the unused low bits of the last character of an
// unpadded segment: it decodes to the same bytes but is not canonical
// (RFC 4648 §3.5). ok is false when the segment has no unused bits.
func withTrailingBits(s string) (string, bool) {
	if len(s)%4 == 0 || len(s)%4 == 1 {
		return s, false
	}
	i := strings.IndexByte(b64url, s[len(s)-1])
	return s[:len(s)-1] + string(b64url[i|1]), true
}

// unaligned pads JSON with a space until its base64url form has unused bits.
func unaligned(js string) string {
	for len(js)%3 == 0 {
		js += " "
	}
	return js
}

func segments(tok string) (h, p, s string) {
	parts := strings.Split(tok, ".")
	return parts[0], parts[1], parts[2]
}

func kidOf(pub crypto.PublicKey) string {
	k, err := KeyID(pub)
	if err != nil {
		panic(err)
	}
	return k
}

func claims(mut ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": "https://issuer.example", "sub": "system:serviceaccount:ns:api", "aud": []string{"vault"},
		"iat": testNow.Add(-time.Minute).Unix(), "nbf": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(time.Hour).Unix(),
		"jti": "j-1",
		"kubernetes.io": map[string]any{
			"namespace": "ns", "serviceaccount": map[string]any{"name": "api", "uid": "sa-uid"},
			"pod": map[string]any{"name": "api-0", "uid": "pod-uid"}, "node": map[string]any{"name": "n1", "uid": "node-uid"},
		},
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func seg(header, payload map[string]any) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	return b64(h) + "." + b64(p)
}

// sign, signRaw and signInput are the module's one test signer
// (internal/testsigner), independent of the code under test.
func sign(key crypto.Signer, header, payload map[string]any) string {
	return testsigner.Sign(key, header, payload)
}

func signRaw(key crypto.Signer, header, payload string) string {
	return testsigner.SignRaw(key, header, payload)
}

func signInput(key crypto.Signer, in string) string { return testsigner.SignInput(key, in) }

func hdr(alg, kid string, extra ...any) map[string]any {
	h := map[string]any{"alg": alg, "kid": kid}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i].(string)] = extra[i+1]
	}
	return h
}

func keysetOf(pubs ...crypto.PublicKey) *KeySet {
	ks := &KeySet{}
	for _, p := range pubs {
		k, err := NewKey(p)
		if err != nil {
			panic(err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	return ks
}

var opts = Options{Issuers: []string{"https://issuer.example"}, Audiences: []string{"vault"}, Leeway: time.Minute, Now: func() time.Time { return testNow }}

func TestVerifyAcceptsEveryIssuedAlgorithm(t *testing.T) {
	ks := keysetOf(&rsaKey.PublicKey, &ecKeys["ES256"].PublicKey, &ecKeys["ES384"].PublicKey, &ecKeys["ES512"].PublicKey)
	tokens := map[string]string{"RS256": sign(rsaKey, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims())}
	for alg, k := range ecKeys {
		tokens[alg] = sign(k, hdr(alg, kidOf(&k.PublicKey)), claims())
	}
	for alg, tok := range tokens {
		r := Verify(tok, ks, opts)
		if !r.Valid() || r.Algorithm != alg {
			t.Errorf("%s: valid=%v alg=%s errors=%v", alg, r.Valid(), r.Algorithm, r.Errors)
		}
	}
}

func TestVerifyRejectsHostileTokens(t *testing.T) {
	kid := kidOf(&rsaKey.PublicKey)
	ks := keysetOf(&rsaKey.PublicKey, &ecKeys["ES256"].PublicKey)
	good := sign(rsaKey, hdr("RS256", kid), claims())
	parts := strings.Split(good, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(secret []byte) string {
		in := seg(hdr("HS256", kid), claims())
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}
	tamperedPayload, _ := json.Marshal(claims(func(c map[string]any) { c["sub"] = "system:serviceaccount:kube-system:admin" }))
	// Flip a bit of the decoded signature so the check, not the base64
	// decoder, has to catch it.
	sigBytes, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sigBytes[10] ^= 1
	flipped := b64(sigBytes)
	for name, tc := range map[string]struct{ token, want string }{
		"tampered payload":      {parts[0] + "." + b64(tamperedPayload) + "." + parts[2], "signature does not verify"},
		"tampered signature":    {parts[0] + "." + parts[1] + "." + flipped, "signature does not verify"},
		"alg none":              {seg(hdr("none", kid), claims()) + ".", `"none" is not allowed`},
		"alg none, no kid":      {seg(map[string]any{"alg": "none"}, claims()) + ".", `"none" is not allowed`},
		"HS256 with PEM secret": {hs(pubPEM), `"HS256" is not allowed`},
		"HS256 with DER secret": {hs(pubDER), `"HS256" is not allowed`},
		"PS256":                 {seg(hdr("PS256", kid), claims()) + "." + parts[2], `"PS256" is not allowed`},
		"no alg":                {seg(map[string]any{"kid": kid}, claims()) + "." + parts[2], "no alg"},
		"unknown kid":           {sign(rsaKey2, hdr("RS256", "evil"), claims()), `no verification key has kid "evil"`},
		"spoofed kid":           {sign(rsaKey2, hdr("RS256", kid), claims()), "signature does not verify with key"},
		"empty kid, other key":  {sign(rsaKey2, hdr("RS256", ""), claims()), "any of the 1 keys"},
		"RS256 kid on EC key":   {sign(rsaKey, hdr("RS256", kidOf(&ecKeys["ES256"].PublicKey)), claims()), "cannot check RS256"},
		"ES384 with P-256 key":  {sign(ecKeys["ES256"], hdr("ES384", kidOf(&ecKeys["ES256"].PublicKey)), claims()), "cannot check ES384"},
		"jku":                   {sign(rsaKey, hdr("RS256", kid, "jku", "https://evil.example/jwks"), claims()), `"jku"`},
		"x5u":                   {sign(rsaKey, hdr("RS256", kid, "x5u", "https://evil.example/c"), claims()), `"x5u"`},
		"jwk":                   {sign(rsaKey, hdr("RS256", kid, "jwk", map[string]any{"kty": "RSA"}), claims()), `"jwk"`},
		"x5c":                   {sign(rsaKey, hdr("RS256", kid, "x5c", []string{"MIIB"}), claims()), `"x5c"`},
		"crit":                  {sign(rsaKey, hdr("RS256", kid, "crit", []string{"b64"}, "b64", false), claims()), "critical extensions"},
		"expired":               {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["exp"] = testNow.Add(-2 * time.Minute).Unix() })), "token expired 2m ago"},
		"nbf in future":         {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["nbf"] = testNow.Add(5 * time.Minute).Unix() })), "not valid before"},
		"iat in future":         {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["iat"] = testNow.Add(5 * time.Minute).Unix() })), "issued in the future"},
		"no exp on bound":       {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		"exp as string":         {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["exp"] = "never" })), "exp is not a number"},
		"wrong issuer":          {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), `issuer "https://evil.example" is not the expected`},
		"wrong audience":        {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { c["aud"] = []string{"other"} })), `audience "other" does not include "vault"`},
		"no audience":           {sign(rsaKey, hdr("RS256", kid), claims(func(c map[string]any) { delete(c, "aud") })), "audience (none)"},
		"EC sig wrong length":   {seg(hdr("ES256", kidOf(&ecKeys["ES256"].PublicKey)), claims()) + "." + b64(make([]byte, 63)), "signature does not verify"},
	} {
		t.Run(name, func(t *testing.T) {
			r := Verify(tc.token, ks, opts)
			if r.Valid() {
				t.Fatalf("accepted")
			}
			if !strings.Contains(strings.Join(r.Errors, "\n"), tc.want) {
				t.Fatalf("errors %q do not mention %q", r.Errors, tc.want)
			}
			for _, e := range r.Errors {
				if strings.Contains(e, parts[2]) || strings.Contains(e, parts[1]) {
					t.Fatalf("error leaks token material: %q", e)
				}
			}
		})
	}
	if r := Verify(good, ks, opts); !r.Valid() {
		t.Fatalf("control token rejected: %v", r.Errors)
	}
}

func TestVerifyReportsEveryProblemAtOnce(t *testing.T) {
	tok := sign(rsaKey2, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims(func(c map[string]any) {
		c["iss"], c["aud"], c["exp"] = "https://evil.example", "other", testNow.Add(-time.Hour).Unix()
	}))
	r := Verify(tok, keysetOf(&rsaKey.PublicKey), opts)
	if len(r.Errors) != 4 {
		t.Fatalf("want 4 errors (signature, exp, iss, aud), got %q", r.Errors)
	}
}

func TestVerifyEmptyKidTriesEveryKey(t *testing.T) {
	ks := keysetOf(&rsaKey2.PublicKey, &ecKeys["ES256"].PublicKey, &rsaKey.PublicKey)
	r := Verify(sign(rsaKey, hdr("RS256", ""), claims()), ks, opts)
	if !r.Valid() || r.KeyID != kidOf(&rsaKey.PublicKey) {
		t.Fatalf("valid=%v key=%s errors=%v", r.Valid(), r.KeyID, r.Errors)
	}
}

func TestVerifyLeeway(t *testing.T) {
	tok := sign(rsaKey, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims(func(c map[string]any) { c["exp"] = testNow.Add(-30 * time.Second).Unix() }))
	ks := keysetOf(&rsaKey.PublicKey)
	if r := Verify(tok, ks, opts); !r.Valid() {
		t.Errorf("expired 30s ago with 1m leeway: %v", r.Errors)
	}
	strict := opts
	strict.Leeway = 0
	if r := Verify(tok, ks, strict); r.Valid() {
		t.Error("expired 30s ago with no leeway was accepted")
	}
}

func TestLegacyTokenVerifiesWithWarning(t *testing.T) {
	legacy := map[string]any{
		"iss": LegacyIssuer, "sub": "system:serviceaccount:ns:old",
		"kubernetes.io/serviceaccount/namespace": "ns", "kubernetes.io/serviceaccount/secret.name": "old-token",
		"kubernetes.io/serviceaccount/service-account.name": "old", "kubernetes.io/serviceaccount/service-account.uid": "u",
	}
	tok := sign(rsaKey, hdr("RS256", ""), legacy)
	r := Verify(tok, keysetOf(&rsaKey.PublicKey), Options{Now: opts.Now})
	if !r.Valid() || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "never expires") {
		t.Fatalf("valid=%v warnings=%v errors=%v", r.Valid(), r.Warnings, r.Errors)
	}
	if l := r.Token.Claims.Legacy; l == nil || l.SecretName != "old-token" || !r.Token.Claims.IsLegacy() {
		t.Fatalf("legacy claims: %+v", l)
	}
	if r := Verify(tok, keysetOf(&rsaKey.PublicKey), Options{Now: opts.Now, RequireExpiry: true}); r.Valid() {
		t.Fatal("RequireExpiry accepted a legacy token")
	}
}

func TestDecodeClaimsAndErrors(t *testing.T) {
	tok, err := Decode("Bearer " + sign(rsaKey, hdr("RS256", "k"), claims(func(c map[string]any) { c["aud"] = "single" })) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	c := tok.Claims
	if c.Audience[0] != "single" || c.Kubernetes.Pod.UID != "pod-uid" || c.Kubernetes.ServiceAccount.Name != "api" || !c.Expiry.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("claims: %+v %+v", c, c.Kubernetes)
	}
	if kind, ref := tok.BoundObject(); kind != "Pod" || ref.Name != "api-0" {
		t.Fatalf("bound object %s %v", kind, ref)
	}
	if ns, name, ok := c.ServiceAccount(); !ok || ns != "ns" || name != "api" {
		t.Fatalf("ServiceAccount() = %s %s %v", ns, name, ok)
	}
	for in, want := range map[string]string{
		"":                                  "empty",
		"abc":                               "want 3",
		"a.b.c.d":                           "want 3",
		"@@@.e30.":                          "header is not base64url",
		"e30.@@@.":                          "payload is not base64url",
		"e30.e30.@@@":                       "signature is not base64url",
		b64([]byte("[]")) + ".e30.":         "header is not a JSON object",
		"e30." + b64([]byte("null")) + ".":  "payload is not a JSON object",
		"e30." + b64([]byte("{}x")) + ".":   "payload is not a JSON object",
		strings.Repeat("a", MaxTokenSize+1): "1 MiB",
	} {
		_, err := Decode(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Decode(%.30q) = %v, want one line with %q", in, err, want)
		}
	}
}

func TestKeyIDIsKubernetesAlgorithm(t *testing.T) {
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	sum := sha256.Sum256(der)
	if got, want := kidOf(&rsaKey.PublicKey), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
	// A fixed vector: the P-256 generator point as public key.
	p := elliptic.P256().Params()
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Set(p.Gx), Y: new(big.Int).Set(p.Gy)}
	der, _ = x509.MarshalPKIXPublicKey(pub)
	sum = sha256.Sum256(der)
	if got := kidOf(pub); got != b64(sum[:]) || len(got) != 43 {
		t.Fatalf("EC KeyID = %s", got)
	}
}

func TestJWKSRoundTripAndPrivateMaterialRefused(t *testing.T) {
	ks := keysetOf(&rsaKey.PublicKey, &ecKeys["ES384"].PublicKey)
	b, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []map[string]any }
	_ = json.Unmarshal(b, &doc)
	if doc.Keys[0]["use"] != "sig" || doc.Keys[0]["alg"] != "RS256" || doc.Keys[0]["kid"] != kidOf(&rsaKey.PublicKey) || doc.Keys[1]["crv"] != "P-384" {
		t.Fatalf("JWKS: %s", b)
	}
	back, err := ParseJWKS(b)
	if err != nil || len(back.Keys) != 2 || back.Keys[1].Algorithm != "ES384" {
		t.Fatalf("ParseJWKS: %+v %v", back, err)
	}
	tok := sign(ecKeys["ES384"], hdr("ES384", kidOf(&ecKeys["ES384"].PublicKey)), claims())
	if r := Verify(tok, back, opts); !r.Valid() {
		t.Fatalf("token rejected with round-tripped JWKS: %v", r.Errors)
	}
	priv := strings.Replace(string(b), `"kty":"RSA"`, `"kty":"RSA","d":"AQAB"`, 1)
	if _, err := ParseJWKS([]byte(priv)); err == nil || !strings.Contains(err.Error(), "private key material") {
		t.Fatalf("private JWKS: %v", err)
	}
	if _, err := ParseJWKS([]byte(`{"foo":1}`)); err == nil {
		t.Fatal("document without keys accepted")
	}
	merged := ks.Merge(back).Merge(keysetOf(&rsaKey2.PublicKey))
	if len(merged.Keys) != 3 {
		t.Fatalf("merge dedupe: %d keys", len(merged.Keys))
	}
}

func TestParsePEMForms(t *testing.T) {
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	ecDER, _ := x509.MarshalECPrivateKey(ecKeys["ES256"])
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	p8, _ := x509.MarshalPKCS8PrivateKey(rsaKey2)
	p8PEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	pkix, _ := x509.MarshalPKIXPublicKey(&ecKeys["ES512"].PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	ks, err := ParsePEM(append(append(append(pkcs1, ecPEM...), p8PEM...), pubPEM...))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{kidOf(&rsaKey.PublicKey), kidOf(&ecKeys["ES256"].PublicKey), kidOf(&rsaKey2.PublicKey), kidOf(&ecKeys["ES512"].PublicKey)}
	for i, k := range ks.Keys {
		if k.ID != want[i] {
			t.Errorf("key %d kid %s, want %s", i, k.ID, want[i])
		}
	}
	if ks.Keys[3].Algorithm != "ES512" {
		t.Errorf("P-521 alg = %s", ks.Keys[3].Algorithm)
	}
	if _, err := ParsePEM([]byte("nothing")); err == nil {
		t.Error("no PEM accepted")
	}
}

func TestFetchDiscovery(t *testing.T) {
	ks := keysetOf(&rsaKey.PublicKey)
	jwks, _ := ks.MarshalJWKS()
	var issuer string
	docIssuer := func() string { return issuer }
	status := http.StatusOK
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, docIssuer(), issuer+"/keys")
		case "/keys":
			w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	d, got, err := FetchDiscovery(context.Background(), srv.Client(), issuer)
	if err != nil || d.Issuer != issuer || len(got.Keys) != 1 || got.Keys[0].ID != ks.Keys[0].ID {
		t.Fatalf("FetchDiscovery: %+v %v", d, err)
	}
	docIssuer = func() string { return "https://other.example" }
	if _, _, err := FetchDiscovery(context.Background(), srv.Client(), issuer); err == nil || !strings.Contains(err.Error(), "must be equal") {
		t.Fatalf("issuer mismatch: %v", err)
	}
	docIssuer = func() string { return issuer }
	status = http.StatusForbidden
	if _, _, err := FetchDiscovery(context.Background(), srv.Client(), issuer); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("403: %v", err)
	}
	if _, _, err := FetchDiscovery(context.Background(), srv.Client(), "http://plain.example"); err == nil {
		t.Fatal("http issuer accepted")
	}
}

func TestRelativeTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Second: "just now", 59 * time.Minute: "in 59m", -3 * time.Hour: "3h ago",
		-(3*time.Hour + 12*time.Minute): "3h12m ago", 52 * time.Hour: "in 2d4h", -45 * time.Second: "45s ago",
	} {
		if got := RelativeTime(testNow.Add(d), testNow); got != want {
			t.Errorf("RelativeTime(%s) = %q, want %q", d, got, want)
		}
	}
}

func hashFor(alg string, input []byte) []byte {
	var buf [64]byte
	return hashInto(&buf, alg, input)
}
