package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

// The Raw benchmarks are the floor a hand-written verifier reaches with the
// same key: decode the signature, hash the signing input, check it. Verify
// adds parsing, key selection and every claim check; make bench prints the
// ratio (target: raw/ours >= 0.90).

func BenchmarkVerifyRS256(b *testing.B) {
	tok := sign(rsaKey, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims())
	ks := keysetOf(&rsaKey.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(tok, ks, opts).Valid() {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkRawRSAVerify(b *testing.B) {
	tok := sign(rsaKey, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims())
	i := strings.LastIndexByte(tok, '.')
	b.ReportAllocs()
	for b.Loop() {
		sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
		sum := sha256.Sum256([]byte(tok[:i]))
		if rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, sum[:], sig) != nil {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	k := ecKeys["ES256"]
	tok := sign(k, hdr("ES256", kidOf(&k.PublicKey)), claims())
	ks := keysetOf(&k.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(tok, ks, opts).Valid() {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkRawECDSAVerify(b *testing.B) {
	k := ecKeys["ES256"]
	tok := sign(k, hdr("ES256", kidOf(&k.PublicKey)), claims())
	i := strings.LastIndexByte(tok, '.')
	b.ReportAllocs()
	for b.Loop() {
		sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
		sum := sha256.Sum256([]byte(tok[:i]))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(&k.PublicKey, sum[:], r, s) {
			b.Fatal("rejected")
		}
	}
}
