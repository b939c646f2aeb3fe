package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/bound-token/kubectl-bound-token/internal/testsigner"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/verify"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const testIssuer = "https://issuer.example"

// claims are a bound token's, valid at testNow for audience vault; mut
// changes them.
func claims(mut ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": testIssuer, "sub": "system:serviceaccount:ns:api", "aud": []string{"vault"},
		"iat": testNow.Add(-time.Minute).Unix(), "nbf": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "ns", "serviceaccount": map[string]any{"name": "api", "uid": "sa-uid"}},
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func set(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }

// signES256 signs with the module's test signer, independent of pkg/jwt.
func signES256(key *ecdsa.PrivateKey, kid string, c map[string]any) string {
	return testsigner.Sign(key, map[string]any{"alg": "ES256", "kid": kid}, c)
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// offlineChecker trusts the keys of a JWKS file.
func offlineChecker(t *testing.T, c verify.Checks, trusted ...*ecdsa.PrivateKey) *verify.Checker {
	t.Helper()
	var pubs []crypto.PublicKey
	for _, k := range trusted {
		pubs = append(pubs, &k.PublicKey)
	}
	c.Sources.JWKSFiles = []string{writeFile(t, t.TempDir(), "jwks.json", jwksOf(t, pubs...))}
	if c.Now == nil {
		c.Now = func() time.Time { return testNow }
	}
	ch, err := verify.NewChecker(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// A token signed by a trusted key passes, whoever signed it: the module's
// test signer and go-jose; the verdict carries the key, the algorithm and the
// decoded token, and an empty (not nil) error list.
func TestCheckAcceptsTokenSignedByATrustedKey(t *testing.T) {
	ec := newKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKid, rsaKid := kidOf(t, &ec.PublicKey), kidOf(t, &rsaKey.PublicKey)
	dir := t.TempDir()
	ch, err := verify.NewChecker(context.Background(), verify.Checks{
		Sources: verify.Sources{
			JWKSFiles: []string{writeFile(t, dir, "jwks.json", jwksOf(t, &ec.PublicKey))},
			PEMFiles:  []string{writeFile(t, dir, "sa.pub", publicPEM(t, &rsaKey.PublicKey))},
		},
		Issuers: []string{testIssuer}, Audiences: []string{"vault"}, Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", rsaKid))
	if err != nil {
		t.Fatal(err)
	}
	byGoJose, err := josejwt.Signed(signer).Claims(claims()).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, kid, alg string
	}{
		{"ES256, test signer", signES256(ec, ecKid, claims()), ecKid, "ES256"},
		{"RS256, go-jose", byGoJose, rsaKid, "RS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ch.Check(context.Background(), tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Verified || v.Errors == nil || len(v.Errors) != 0 || v.KeyID != tc.kid || v.Algorithm != tc.alg {
				t.Errorf("verdict %+v, want verified by %s with %s and errors []", v, tc.kid, tc.alg)
			}
			if v.Token == nil || v.Header["kid"] != tc.kid || v.Payload["sub"] != "system:serviceaccount:ns:api" || v.Legacy {
				t.Errorf("decoded token: header %v payload %v legacy %v", v.Header, v.Payload, v.Legacy)
			}
			// JSON shows "errors": [] for a verified token.
			b, _ := json.Marshal(v)
			if !strings.Contains(string(b), `"errors":[]`) {
				t.Errorf("JSON %s lacks \"errors\":[]", b)
			}
		})
	}
	if !ch.IssuerChecked() || !ch.AudienceChecked() {
		t.Errorf("IssuerChecked %v AudienceChecked %v, want both", ch.IssuerChecked(), ch.AudienceChecked())
	}
}

// Forged or unacceptable tokens are refused with the reason, and Check
// returns no error for them (it only fails when no answer could be had).
func TestCheckRefusesForgedTokens(t *testing.T) {
	trusted, other := newKey(t), newKey(t)
	kid := kidOf(t, &trusted.PublicKey)
	ch := offlineChecker(t, verify.Checks{Issuers: []string{testIssuer}, Audiences: []string{"vault"}}, trusted)

	good := signES256(trusted, kid, claims())
	h, _, _ := strings.Cut(good, ".")
	der, _ := x509.MarshalPKIXPublicKey(&trusted.PublicKey)
	for _, tc := range []struct {
		name, token, want string
		decodes           bool // the verdict still shows what the token says
	}{
		{"signed by another key under the trusted kid", signES256(other, kid, claims()), "signature does not verify with key", true},
		{"signed by another key under its own kid", signES256(other, kidOf(t, &other.PublicKey), claims()), "no verification key has kid", true},
		{"alg none", b64json(map[string]any{"alg": "none", "kid": kid}) + "." + b64json(claims()) + ".", `algorithm "none" is not allowed`, true},
		// The classic confusion: the public key used as an HMAC secret.
		{"HS256 keyed with the public key", testsigner.SignHS256(der, map[string]any{"alg": "HS256", "kid": kid}, claims()), `algorithm "HS256" is not allowed`, true},
		{"payload swapped after signing", h + "." + b64json(claims(set("sub", "system:serviceaccount:kube-system:admin"))) + "." + strings.Split(good, ".")[2],
			"signature does not verify with key", true},
		{"wrong issuer", signES256(trusted, kid, claims(set("iss", "https://evil.example"))), `issuer "https://evil.example" is not the expected`, true},
		{"wrong audience", signES256(trusted, kid, claims(set("aud", []string{"other"}))), `audience "other" does not include "vault"`, true},
		{"expired", signES256(trusted, kid, claims(set("exp", testNow.Add(-time.Hour).Unix()))), "token expired", true},
		{"not yet valid", signES256(trusted, kid, claims(set("nbf", testNow.Add(time.Hour).Unix()))), "token is not valid before", true},
		{"not a JWT", "hello", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ch.Check(context.Background(), tc.token)
			if err != nil {
				t.Fatalf("Check failed instead of refusing: %v", err)
			}
			if v.Verified || len(v.Errors) == 0 {
				t.Fatalf("verdict %+v, want refused", v)
			}
			if tc.want != "" && !slices.ContainsFunc(v.Errors, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Errorf("errors %q, want one with %q", v.Errors, tc.want)
			}
			if (v.Token != nil) != tc.decodes || (v.Payload != nil) != tc.decodes {
				t.Errorf("token %v payload %v, want decoded = %v", v.Token, v.Payload, tc.decodes)
			}
		})
	}
}

// Leeway and Now reach the verification: a token expired 30 s ago passes
// with the default leeway and not without one.
func TestCheckLeewayAndClock(t *testing.T) {
	key := newKey(t)
	tok := signES256(key, kidOf(t, &key.PublicKey), claims(set("exp", testNow.Add(-30*time.Second).Unix())))
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		now    time.Time
		want   bool
	}{
		{"no leeway", 0, testNow, false},
		{"default leeway", verify.DefaultLeeway, testNow, true},
		{"clock before expiry", 0, testNow.Add(-time.Minute), true},
	} {
		now := tc.now
		ch := offlineChecker(t, verify.Checks{Leeway: tc.leeway, Now: func() time.Time { return now }}, key)
		v, err := ch.Check(context.Background(), tok)
		if err != nil || v.Verified != tc.want {
			t.Errorf("%s: verified %v (%q, %v), want %v", tc.name, v.Verified, v.Errors, err, tc.want)
		}
	}
}

// The issuer is checked against Issuers; with an OIDC issuer as the key
// source and no Issuers, against that issuer (its keys vouch for it only);
// with neither, not at all, and IssuerChecked says so.
func TestCheckIssuerRule(t *testing.T) {
	key := newKey(t)
	kid := kidOf(t, &key.PublicKey)
	issuer, hc, _ := issuerServer(t, jwksOf(t, &key.PublicKey))
	fromIssuer := signES256(key, kid, claims(set("iss", issuer)))
	fromElsewhere := signES256(key, kid, claims(set("iss", "https://elsewhere.example")))
	now := func() time.Time { return testNow }
	for _, tc := range []struct {
		name              string
		checks            verify.Checks
		wantChecked       bool
		issuerOK, otherOK bool
	}{
		{"OIDC issuer, no Issuers", verify.Checks{Sources: verify.Sources{OIDCIssuer: issuer, HTTPClient: hc}, Now: now}, true, true, false},
		{"OIDC issuer, Issuers given", verify.Checks{Sources: verify.Sources{OIDCIssuer: issuer, HTTPClient: hc}, Issuers: []string{"https://elsewhere.example"}, Now: now},
			true, false, true},
		{"key file, no Issuers", verify.Checks{Sources: verify.Sources{PEMFiles: []string{writeFile(t, t.TempDir(), "k.pem", publicPEM(t, &key.PublicKey))}}, Now: now},
			false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := verify.NewChecker(context.Background(), tc.checks)
			if err != nil {
				t.Fatal(err)
			}
			if ch.IssuerChecked() != tc.wantChecked || ch.AudienceChecked() {
				t.Errorf("IssuerChecked %v AudienceChecked %v, want %v false", ch.IssuerChecked(), ch.AudienceChecked(), tc.wantChecked)
			}
			for tok, want := range map[string]bool{fromIssuer: tc.issuerOK, fromElsewhere: tc.otherOK} {
				v, err := ch.Check(context.Background(), tok)
				if err != nil || v.Verified != want {
					t.Errorf("iss %v: verified %v %q, want %v", v.Payload["iss"], v.Verified, v.Errors, want)
				}
			}
		})
	}
}

// A legacy Secret-based token verifies offline with a warning that only
// the cluster can tell whether it was invalidated; the verdict marks it.
func TestCheckLegacyTokenWarns(t *testing.T) {
	key := newKey(t)
	ch := offlineChecker(t, verify.Checks{}, key)
	tok := testsigner.Sign(key, map[string]any{"alg": "ES256", "kid": kidOf(t, &key.PublicKey)}, map[string]any{
		"iss": jwt.LegacyIssuer, "sub": "system:serviceaccount:ns:api",
		"kubernetes.io/serviceaccount/namespace": "ns", "kubernetes.io/serviceaccount/secret.name": "api-token",
	})
	v, err := ch.Check(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verified || !v.Legacy || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "TokenReview") {
		t.Errorf("verdict %+v, want verified, legacy, with the TokenReview warning", v)
	}
}

// NewChecker fails when the keys cannot be had, rather than refusing every
// token later as if it were forged.
func TestNewCheckerNeedsKeys(t *testing.T) {
	if _, err := verify.NewChecker(context.Background(), verify.Checks{Sources: verify.Sources{JWKSFiles: []string{writeFile(t, t.TempDir(), "e.json", []byte(`{"keys":[]}`))}}}); err == nil ||
		!strings.Contains(err.Error(), "holds no usable verification keys") {
		t.Errorf("no keys: %v", err)
	}
	if _, err := verify.NewChecker(context.Background(), verify.Checks{}); err == nil || err.Error() != "no cluster client to ask" {
		t.Errorf("no source and no cluster: %v", err)
	}
	if _, err := verify.NewChecker(context.Background(), verify.Checks{TokenReview: true}); err == nil || err.Error() != "no cluster client to ask" {
		t.Errorf("TokenReview without a cluster: %v", err)
	}
}

// With TokenReview the cluster's answer is the verdict: no keys are loaded
// (the fake clientset has no JWKS to serve), the audiences go with the
// review, a token that decodes is still shown, and a review that fails is
// an error, not a refusal.
func TestCheckWithTokenReview(t *testing.T) {
	key := newKey(t)
	tok := signES256(key, kidOf(t, &key.PublicKey), claims())
	accepted := authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "system:serviceaccount:ns:api"}}

	for _, tc := range []struct {
		name       string
		answer     authenticationv1.TokenReviewStatus
		fail       []error
		token      string
		wantOK     bool
		wantErrors []string
		wantErr    bool
	}{
		{"accepted", accepted, nil, tok, true, []string{}, false},
		{"refused", authenticationv1.TokenReviewStatus{}, nil, tok, false, []string{"TokenReview: the cluster does not accept this token"}, false},
		// An opaque token is the cluster's to judge: it need not decode.
		{"accepted, not a JWT", accepted, nil, "opaque", true, []string{}, false},
		{"review failed", accepted, []error{apierrors.NewBadRequest("bad")}, tok, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, specs := tokenReviews(tc.answer, tc.fail...)
			ch, err := verify.NewChecker(context.Background(), verify.Checks{TokenReview: true, Sources: verify.Sources{Cluster: cs}, Audiences: []string{"vault"}})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Source() != "the cluster's TokenReview API" {
				t.Errorf("Source() = %q", ch.Source())
			}
			v, err := ch.Check(context.Background(), tc.token)
			if tc.wantErr {
				if err == nil || v != nil {
					t.Errorf("%+v, %v; want an error", v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Verified != tc.wantOK || !reflect.DeepEqual(v.Errors, tc.wantErrors) || v.TokenReview == nil {
				t.Errorf("verdict %+v, want verified %v errors %q and the review", v, tc.wantOK, tc.wantErrors)
			}
			if decodes := tc.token == tok; (v.Token != nil) != decodes || (v.Payload["sub"] == "system:serviceaccount:ns:api") != decodes {
				t.Errorf("decoded token %v payload %v, want decoded = %v", v.Token, v.Payload, decodes)
			}
			if len(*specs) != 1 || !reflect.DeepEqual((*specs)[0].Audiences, []string{"vault"}) || (*specs)[0].Token != tc.token {
				t.Errorf("reviews sent %+v, want one with the token and audience vault", *specs)
			}
		})
	}
}

func TestCheckerSourceOffline(t *testing.T) {
	key := newKey(t)
	f := writeFile(t, t.TempDir(), "k.pem", publicPEM(t, &key.PublicKey))
	ch, err := verify.NewChecker(context.Background(), verify.Checks{Sources: verify.Sources{PEMFiles: []string{f}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[key file " + f + "]"; ch.Source() != want {
		t.Errorf("Source() = %q, want %q", ch.Source(), want)
	}
}

// A copy shares nothing a printer or caller could change: maps, lists and
// the review are the copy's own, and Errors stays a list even when empty.
func TestVerdictDeepCopy(t *testing.T) {
	orig := &verify.Verdict{
		Header: map[string]any{"alg": "ES256"}, Payload: map[string]any{"sub": "a"},
		Errors: nil, Warnings: []string{"w"}, TokenReview: &verify.Review{Username: "u"},
	}
	c, ok := orig.DeepCopyObject().(*verify.Verdict)
	if !ok {
		t.Fatalf("DeepCopyObject returned %T", orig.DeepCopyObject())
	}
	if c.Errors == nil {
		t.Error("copy's Errors is nil: JSON would show null")
	}
	c.Header["alg"], c.Payload["sub"], c.Warnings[0], c.TokenReview.Username = "none", "b", "x", "v"
	c.Errors = append(c.Errors, "e")
	if orig.Header["alg"] != "ES256" || orig.Payload["sub"] != "a" || orig.Warnings[0] != "w" || orig.TokenReview.Username != "u" || orig.Errors != nil {
		t.Errorf("changing the copy changed the original: %+v", orig)
	}
	if _, ok := (&verify.Verdict{}).DeepCopyObject().(*verify.Verdict); !ok {
		t.Error("empty verdict does not copy")
	}
}
