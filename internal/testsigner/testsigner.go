// Package testsigner signs JWTs for tests, with the standard library only,
// so that what the plugin verifies is never signed by the code under test:
// RS256 with RSA keys, ES256/ES384/ES512 with the P-256/P-384/P-521 curves
// (the algorithms kube-apiserver issues), and HS256 for hostile tokens.
// Every package's tests use this one signer (unit tests and test/e2e; it
// sits at the module root so that both may import it).
package testsigner

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
)

// B64 is base64url without padding, as JWS segments are encoded.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Segments is the signing input "HEADER.PAYLOAD" of two JSON objects.
func Segments(header, payload map[string]any) string {
	h, err := json.Marshal(header)
	if err != nil {
		panic(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return B64(h) + "." + B64(p)
}

// Sign returns header.payload.signature, signed with key.
func Sign(key crypto.Signer, header, payload map[string]any) string {
	return SignInput(key, Segments(header, payload))
}

// SignRaw signs hand-written JSON, for encodings a map cannot express
// (duplicate or escaped member names).
func SignRaw(key crypto.Signer, header, payload string) string {
	return SignInput(key, B64([]byte(header))+"."+B64([]byte(payload)))
}

// SignInput appends the signature of an already encoded signing input.
func SignInput(key crypto.Signer, in string) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return in + "." + B64(sig)
	case *ecdsa.PrivateKey:
		// RFC 7518 3.4: R and S, each the curve's size, concatenated.
		bits := k.Curve.Params().BitSize
		h := map[int]func() hash.Hash{256: sha256.New, 384: sha512.New384, 521: sha512.New}[bits]
		if h == nil {
			panic(fmt.Sprintf("testsigner: no JWS algorithm for a %d-bit curve", bits))
		}
		d := h()
		d.Write([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k, d.Sum(nil))
		if err != nil {
			panic(err)
		}
		size := (bits + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return in + "." + B64(sig)
	}
	panic(fmt.Sprintf("testsigner: key type %T", key))
}

// SignHS256 signs with a shared secret: an algorithm kube-apiserver never
// issues, for tokens a verifier must refuse.
func SignHS256(secret []byte, header, payload map[string]any) string {
	in := Segments(header, payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + B64(m.Sum(nil))
}
