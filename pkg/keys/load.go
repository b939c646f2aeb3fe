package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// PublicPEM encodes a public key as a PKIX "PUBLIC KEY" block, the form
// kube-apiserver's --service-account-key-file reads.
func PublicPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadPrivate reads a PEM private key (PKCS#1, SEC1 or PKCS#8; RSA or EC)
// and keeps its encoding. Errors never quote the file's content.
func LoadPrivate(path string) (*Pair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var (
		signer crypto.Signer
		block  *pem.Block
	)
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		var k any
		switch blk.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: the %s block does not parse", path, blk.Type)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: unsupported private key type %T", path, k)
		}
		signer, block = s, blk
		break
	}
	if signer == nil {
		return nil, fmt.Errorf("%s holds no PEM private key (RSA or EC)", path)
	}
	p, err := NewPair(signer, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Only the private key block, in the encoding it came in.
	p.PrivatePEM = pem.EncodeToMemory(block)
	return p, nil
}
