package jwt

import (
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"

	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Algorithms are the only ones kube-apiserver signs with; everything else
// (none, HS*, PS*) is refused before any key is touched.
var Algorithms = []string{"RS256", "ES256", "ES384", "ES512"}

// forbiddenHeaders would let the token choose its own key.
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c"}

// Options are the claim checks; zero values check nothing beyond the
// signature and the token's own times.
type Options struct {
	Issuers   []string // iss must be one of these
	Audiences []string // aud must contain one of these
	Leeway    time.Duration
	Now       func() time.Time
	// RequireExpiry rejects tokens without exp, legacy ones included.
	RequireExpiry bool
}

// Result is the outcome of Verify: every problem found, not just the first.
type Result struct {
	Token     *Token
	KeyID     string // the key whose signature verified
	Algorithm string
	Errors    []string
	Warnings  []string

	signed bool
}

// Valid is true only when the signature verified and no check failed.
func (r *Result) Valid() bool { return r != nil && r.signed && len(r.Errors) == 0 }

func (r *Result) fail(format string, a ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, a...))
}

// Verify checks raw against keys and opts. It never panics on hostile input,
// and no message contains the token or key material.
func Verify(raw string, keys *KeySet, opts Options) *Result {
	r := &Result{}
	t, err := Decode(raw)
	if err != nil {
		r.fail("%v", err)
		return r
	}
	r.Token = t
	var now time.Time
	if opts.Now != nil {
		now = opts.Now()
	} else {
		now = time.Now()
	}
	r.checkSignature(t, keys)
	r.checkClaims(t, opts, now)
	return r
}

func (r *Result) checkSignature(t *Token, keys *KeySet) {
	headerOK, usable := r.checkHeader(t)
	if !usable {
		return
	}
	if keys == nil || len(keys.Keys) == 0 {
		r.fail("no verification keys")
		return
	}
	kid := t.Header.KeyID
	var buf [4]*Key
	candidates := keysForKID(keys, kid, buf[:0])
	if len(candidates) == 0 {
		r.fail("no verification key has kid %q (%d key%s known)", clip(kid), len(keys.Keys), text.Plural(len(keys.Keys)))
		return
	}
	r.verifyWith(t, candidates, headerOK)
}

// checkHeader records every fault of t's header, in order. headerOK is
// false when there is one: a signature may still verify (and be reported)
// but the token is not signed. usable is false when alg is missing or not
// allowed, and no key is tried.
func (r *Result) checkHeader(t *Token) (headerOK, usable bool) {
	for _, p := range t.Header.Problems {
		r.fail("%s", p)
	}
	for _, p := range t.nonCanonical {
		r.fail("%s: tokens are unpadded, canonical base64url (RFC 7515 §2), and the signature covers the text as written", p)
	}
	alg := t.Header.Algorithm
	switch {
	case alg == "" && len(t.Header.Problems) == 0:
		r.fail("header has no alg")
		return false, false
	case alg == "":
		return false, false
	case !slices.Contains(Algorithms, alg):
		r.fail("algorithm %q is not allowed: only %s", clip(alg), strings.Join(Algorithms, ", "))
		return false, false
	}
	headerOK = len(t.Header.Problems) == 0
	for _, h := range forbiddenHeaders {
		if t.Header.Has(h) {
			r.fail("header carries %q: keys are never taken from the token itself", h)
			headerOK = false
		}
	}
	// RFC 7797: "b64": false makes the signing input the payload's JSON
	// rather than its base64url, so the same token means two signing inputs
	// to two readers; go-jose honours it even without crit. kube-apiserver
	// never sets it, so any b64 member is refused, true included.
	if t.Header.Has("b64") {
		r.fail(`header carries "b64" (RFC 7797 unencoded payload): it changes what the signature covers, and ServiceAccount tokens never use it`)
		headerOK = false
	}
	if t.Header.Has("crit") {
		r.fail("header lists critical extensions %s: none are understood", t.Header.Crit)
		headerOK = false
	}
	return headerOK, true
}

// keysForKID appends to dst the keys whose ID is kid, or every key when
// kid is empty.
func keysForKID(keys *KeySet, kid string, dst []*Key) []*Key {
	for i := range keys.Keys {
		k := &keys.Keys[i]
		// An empty kid is tried against every key, as kube-apiserver does
		// for tokens minted before 1.16.
		if kid != "" && k.ID != kid {
			continue
		}
		dst = append(dst, k)
	}
	return dst
}

// verifyWith checks t's signature with each candidate key that fits its
// alg; the first that verifies names the key, and the token is signed only
// if headerOK. Otherwise it records why none did.
func (r *Result) verifyWith(t *Token, candidates []*Key, headerOK bool) {
	alg, kid := t.Header.Algorithm, t.Header.KeyID
	var sum [64]byte
	digest := hashInto(&sum, alg, t.signingInput)
	tried := 0
	for _, k := range candidates {
		if !keyFits(k, alg) {
			continue
		}
		tried++
		if verifySig(k.Public, alg, digest, t.signature) {
			if headerOK {
				r.signed = true
			}
			r.KeyID, r.Algorithm = k.ID, alg
			return
		}
	}
	switch {
	case tried == 0 && kid != "":
		r.fail("key %q cannot check %s signatures (it is %s)", clip(kid), alg, describeKey(candidates[0]))
	case tried == 0:
		r.fail("none of the %d keys can check %s signatures", len(candidates), alg)
	case kid != "":
		r.fail("signature does not verify with key %q: the token was altered or signed by another key", clip(kid))
	default:
		r.fail("signature does not verify with any of the %d keys (token has no kid)", tried)
	}
}

func (r *Result) checkClaims(t *Token, opts Options, now time.Time) {
	c := t.Claims
	for _, p := range c.Problems {
		r.fail("%s", p)
	}
	lw := opts.Leeway
	legacy := c.IsLegacy()
	switch {
	// Only the legacy issuer excuses a missing exp: legacy-looking claims
	// under another issuer do not.
	case c.Expiry == nil && (opts.RequireExpiry || c.Issuer != LegacyIssuer):
		r.fail("token has no exp: bound tokens always expire")
	case c.Expiry != nil && now.After(c.Expiry.Add(lw)):
		r.fail("token expired %s (at %s)", RelativeTime(*c.Expiry, now), c.Expiry.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(lw).Before(*c.NotBefore) {
		r.fail("token is not valid before %s (%s)", c.NotBefore.UTC().Format(time.RFC3339), RelativeTime(*c.NotBefore, now))
	}
	if c.IssuedAt != nil && now.Add(lw).Before(*c.IssuedAt) {
		r.fail("token is issued in the future (iat %s, %s)", c.IssuedAt.UTC().Format(time.RFC3339), RelativeTime(*c.IssuedAt, now))
	}
	if len(opts.Issuers) > 0 && !slices.Contains(opts.Issuers, c.Issuer) {
		r.fail("issuer %q is not the expected %s", clip(c.Issuer), quoteList(opts.Issuers))
	}
	if len(opts.Audiences) > 0 {
		match := false
		for _, a := range c.Audience {
			if slices.Contains(opts.Audiences, a) {
				match = true
				break
			}
		}
		if !match {
			r.fail("audience %s does not include %s", quoteList(c.Audience), quoteList(opts.Audiences))
		}
	}
	if legacy {
		r.Warnings = append(r.Warnings, "legacy Secret-based token: it never expires and has no audience; offline checks cannot see whether its Secret was deleted or invalidated (the cluster's TokenReview API can); replace it with a bound token")
	}
}

// hashInto writes the digest into buf so that it stays off the heap.
func hashInto(buf *[64]byte, alg string, input []byte) []byte {
	switch alg {
	case "ES384":
		s := sha512.Sum384(input)
		return buf[:copy(buf[:], s[:])]
	case "ES512":
		s := sha512.Sum512(input)
		return buf[:copy(buf[:], s[:])]
	}
	s := sha256.Sum256(input)
	return buf[:copy(buf[:], s[:])]
}

func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return nil
}

// keyFits: the key's type and curve must match the algorithm, and a key that
// names its algorithm is only used for that one.
func keyFits(k *Key, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return pub.Curve == curveFor(alg)
	}
	return false
}

func verifySig(pub crypto.PublicKey, alg string, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" && rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		// JWS carries R||S, each the curve's size (RFC 7518 §3.4), not DER.
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		rr := new(big.Int).SetBytes(sig[:size])
		ss := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, rr, ss)
	}
	return false
}

func describeKey(k *Key) string {
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PublicKey:
		return "an EC " + pub.Curve.Params().Name + " key"
	}
	return fmt.Sprintf("a %T", k.Public)
}

// clip bounds attacker-chosen strings in messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// quoteList shows at most a few items: the lists come from the token.
func quoteList(v []string) string {
	const most = 5
	if len(v) == 0 {
		return "(none)"
	}
	q := make([]string, 0, min(len(v), most+1))
	for _, s := range v[:min(len(v), most)] {
		q = append(q, fmt.Sprintf("%q", clip(s)))
	}
	if len(v) > most {
		q = append(q, fmt.Sprintf("... (%d more)", len(v)-most))
	}
	if len(q) == 1 {
		return q[0]
	}
	return "[" + strings.Join(q, ", ") + "]"
}
