package jwt

import (
	"github.com/bound-token/kubectl-bound-token/pkg/internal/text"

	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is one verification key.
type Key struct {
	ID        string
	Algorithm string // RS256, ES256, ES384, ES512, or "" when the source does not say
	Public    crypto.PublicKey
}

// KeySet is an ordered set of verification keys.
type KeySet struct {
	Keys []Key
}

// KeyID is kube-apiserver's kid: base64url, unpadded, of SHA-256 over the
// PKIX DER public key. It is not the RFC 7638 JWK thumbprint.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// AlgorithmFor is the algorithm kube-apiserver signs with for this key.
func AlgorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256", nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("unsupported EC curve %s", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("unsupported key type %T: only RSA and ECDSA keys sign ServiceAccount tokens", pub)
}

// NewKey wraps a public key with kube-apiserver's kid and algorithm.
func NewKey(pub crypto.PublicKey) (Key, error) {
	alg, err := AlgorithmFor(pub)
	if err != nil {
		return Key{}, err
	}
	kid, err := KeyID(pub)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: kid, Algorithm: alg, Public: pub}, nil
}

// ParseJWKS reads a JWKS document. Private key material is refused: a JWKS
// that carries it has leaked a signing key.
func ParseJWKS(data []byte) (*KeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %s", text.OneLine(err.Error(), 120))
	}
	if raw.Keys == nil {
		return nil, errors.New("not a JWKS document: no \"keys\" list")
	}
	ks := &KeySet{}
	for i, r := range raw.Keys {
		var members map[string]any
		if err := json.Unmarshal(r, &members); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %s", i, text.OneLine(err.Error(), 120))
		}
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := members[priv]; ok {
				return nil, fmt.Errorf("JWKS key %d holds private key material (%q): refusing it; publish public keys only", i, priv)
			}
		}
		// Other key types (OKP, future ones) never sign ServiceAccount
		// tokens; skipping them keeps a mixed JWKS usable.
		if kty, _ := members["kty"].(string); kty != "RSA" && kty != "EC" {
			continue
		}
		var jk jose.JSONWebKey
		if err := jk.UnmarshalJSON(r); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %s", i, text.OneLine(err.Error(), 120))
		}
		if jk.Use != "" && jk.Use != "sig" {
			continue
		}
		switch jk.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			continue // other key types never sign ServiceAccount tokens
		}
		ks.Keys = append(ks.Keys, Key{ID: jk.KeyID, Algorithm: jk.Algorithm, Public: jk.Key})
	}
	return ks, nil
}

// ParsePEM reads public keys, certificates and private keys (reduced to
// their public halves) from PEM blocks; the kid is kube-apiserver's.
func ParsePEM(data []byte) (*KeySet, error) {
	ks := &KeySet{}
	rest := data
	n := 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		n++
		var (
			pub crypto.PublicKey
			err error
		)
		switch blk.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
				pub = c.PublicKey
			}
		case "RSA PRIVATE KEY":
			var k *rsa.PrivateKey
			if k, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
				pub = &k.PublicKey
			}
		case "EC PRIVATE KEY":
			var k *ecdsa.PrivateKey
			if k, err = x509.ParseECPrivateKey(blk.Bytes); err == nil {
				pub = &k.PublicKey
			}
		case "PRIVATE KEY":
			var k any
			if k, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
				if s, ok := k.(crypto.Signer); ok {
					pub = s.Public()
				} else {
					err = fmt.Errorf("unsupported private key %T", k)
				}
			}
		case "EC PARAMETERS":
			continue
		default:
			return nil, fmt.Errorf("PEM block %d is a %q: want a public key, certificate or private key", n, blk.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %s", n, blk.Type, text.OneLine(err.Error(), 120))
		}
		k, err := NewKey(pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	if n == 0 {
		return nil, errors.New("no PEM block found")
	}
	return ks, nil
}

// Merge returns the union of both sets, keeping the first key for each kid.
// Keys without kid are kept unless the same public key is already present.
func (ks *KeySet) Merge(other *KeySet) *KeySet {
	out := &KeySet{}
	seen := map[string]bool{}
	add := func(k Key) {
		id := k.ID
		if id == "" {
			id, _ = KeyID(k.Public)
			id = "\x00" + id + k.Algorithm
		}
		if seen[id] {
			return
		}
		seen[id] = true
		out.Keys = append(out.Keys, k)
	}
	for _, s := range []*KeySet{ks, other} {
		if s == nil {
			continue
		}
		for _, k := range s.Keys {
			add(k)
		}
	}
	return out
}

// MarshalJWKS renders the set the way kube-apiserver serves /openid/v1/jwks.
func (ks *KeySet) MarshalJWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range ks.Keys {
		alg := k.Algorithm
		if alg == "" {
			var err error
			if alg, err = AlgorithmFor(k.Public); err != nil {
				return nil, err
			}
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: alg, Use: "sig"})
	}
	return json.Marshal(set)
}

// Discovery is the OpenID provider configuration kube-apiserver serves.
type Discovery struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
}

const maxDocument = 1 << 20

// FetchDiscovery reads issuer's discovery document and the JWKS it points
// to. The document must name exactly this issuer (OIDC discovery §4.3):
// otherwise one issuer could vouch for another's keys.
func FetchDiscovery(ctx context.Context, hc *http.Client, issuer string) (*Discovery, *KeySet, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("issuer %q must be an https URL without query or fragment", issuer)
	}
	b, err := get(ctx, hc, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return nil, nil, err
	}
	var d Discovery
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, nil, fmt.Errorf("issuer %s: discovery document is not JSON: %s", issuer, text.OneLine(err.Error(), 120))
	}
	if d.Issuer != issuer {
		return nil, nil, fmt.Errorf("issuer %s: discovery document names issuer %q; they must be equal", issuer, d.Issuer)
	}
	ju, err := url.Parse(d.JWKSURI)
	if err != nil || ju.Scheme != "https" || ju.Host == "" {
		return nil, nil, fmt.Errorf("issuer %s: jwks_uri %q is not an https URL", issuer, d.JWKSURI)
	}
	jb, err := get(ctx, hc, d.JWKSURI)
	if err != nil {
		return nil, nil, err
	}
	ks, err := ParseJWKS(jb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d.JWKSURI, err)
	}
	return &d, ks, nil
}

func get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// kube-apiserver answers the JWKS as application/jwk-set+json and refuses
	// a narrower Accept with 406.
	req.Header.Set("Accept", "application/json, application/jwk-set+json, */*;q=0.1")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %s", u, text.OneLine(err.Error(), 120))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %s", u, text.OneLine(err.Error(), 120))
	}
	if len(b) > maxDocument {
		return nil, fmt.Errorf("GET %s: answer larger than 1 MiB", u)
	}
	return b, nil
}
