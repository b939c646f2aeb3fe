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
	"time"
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

// BenchmarkVerifyVsRaw alternates our Verify and the raw check on every
// iteration and reports both and their ratio: on a shared machine, drift in
// the neighbours' load hits both sides alike, which separate benchmarks
// cannot promise. Metric names follow `make bench` (bench/rows.txt):
// ours-ns/op, alt-ns/op (the raw check) and alt/ours.
func BenchmarkVerifyVsRaw(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			var (
				tok  string
				ks   *KeySet
				raw  func() bool
				ecK  = ecKeys["ES256"]
				size = 32
			)
			if alg == "RS256" {
				tok = sign(rsaKey, hdr("RS256", kidOf(&rsaKey.PublicKey)), claims())
				ks = keysetOf(&rsaKey.PublicKey)
			} else {
				tok = sign(ecK, hdr("ES256", kidOf(&ecK.PublicKey)), claims())
				ks = keysetOf(&ecK.PublicKey)
			}
			i := strings.LastIndexByte(tok, '.')
			raw = func() bool {
				sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
				sum := sha256.Sum256([]byte(tok[:i]))
				if alg == "RS256" {
					return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, sum[:], sig) == nil
				}
				r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
				return ecdsa.Verify(&ecK.PublicKey, sum[:], r, s)
			}
			var oursNs, rawNs int64
			n := 0
			for b.Loop() {
				t0 := time.Now()
				okRaw := raw()
				t1 := time.Now()
				okOurs := Verify(tok, ks, opts).Valid()
				t2 := time.Now()
				if !okRaw || !okOurs {
					b.Fatal("rejected")
				}
				rawNs += t1.Sub(t0).Nanoseconds()
				oursNs += t2.Sub(t1).Nanoseconds()
				n++
			}
			b.ReportMetric(float64(oursNs)/float64(n), "ours-ns/op")
			b.ReportMetric(float64(rawNs)/float64(n), "alt-ns/op")
			b.ReportMetric(float64(rawNs)/float64(oursNs), "alt/ours")
		})
	}
}
