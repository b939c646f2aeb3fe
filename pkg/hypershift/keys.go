package hypershift

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

// DefaultIssuerURL is the CRD's default for spec.issuerURL
// (cmd/install/assets/crds/hypershift-operator/zz_generated.crd-manifests/
// hostedclusters-Hypershift-Default.crd.yaml, `default:
// https://kubernetes.default.svc`; api/hypershift/v1beta1/
// hostedcluster_types.go, HostedClusterSpec.IssuerURL). Only in-cluster
// clients can verify tokens with that issuer, so a custom signing key with
// it is pointless: every HostedCluster has an issuerURL, this one included.
const DefaultIssuerURL = "https://kubernetes.default.svc"

// DefaultKeepOldKeysFor is how long a retired key stays in old-key.pub: one
// year, the longest lifetime a kubelet-projected token gets when
// kube-apiserver extends it (--service-account-extend-token-expiration,
// kubernetes pkg/serviceaccount/claims.go, ExpirationExtensionSeconds =
// 24 * 365 * 60 * 60).
const DefaultKeepOldKeysFor = 365 * 24 * time.Hour

// ErrNotPKCS1RSA: HyperShift cannot read the key.
var ErrNotPKCS1RSA = errors.New("HyperShift reads only RSA signing keys")

// ParseSigningKey reads a Secret's "key" exactly as HyperShift does: the
// first PEM block, parsed with x509.ParsePKCS1PrivateKey (openshift/hypershift
// support/certs/tls.go, PemToPrivateKey, called from
// hypershift-operator/controllers/hostedcluster/hostedcluster_controller.go,
// serviceAccountSigningKeyBytes). An EC key, or an RSA key in PKCS#8 ("PRIVATE
// KEY"), makes the HostedCluster fail validation. The error never quotes
// the key.
func ParseSigningKey(data []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("a %q block is not a PKCS#1 RSA private key (\"RSA PRIVATE KEY\"): %w", blk.Type, ErrNotPKCS1RSA)
	}
	return k, nil
}

// SigningKey returns p in the only form HyperShift reads: an RSA key as
// PKCS#1 ("RSA PRIVATE KEY"), converted from PKCS#8 if need be. EC keys are
// refused (ParseSigningKey says why).
func SigningKey(p *keys.Pair) (*keys.Pair, error) {
	rk, ok := p.Private.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is %s, but HyperShift reads the signing key with x509.ParsePKCS1PrivateKey: %w (PKCS#1, \"RSA PRIVATE KEY\")", keyKind(p), ErrNotPKCS1RSA)
	}
	out, err := keys.NewPair(rk, false)
	if err != nil {
		return nil, err
	}
	if _, err := ParseSigningKey(out.PrivatePEM); err != nil {
		return nil, err
	}
	return out, nil
}

func keyKind(p *keys.Pair) string {
	switch p.Private.(type) {
	case *rsa.PrivateKey:
		return "an RSA key"
	case *ecdsa.PrivateKey:
		return "an EC key"
	}
	return fmt.Sprintf("a %T", p.Private)
}

// OldKeysAnnotation, on a Secret rotate wrote, lists the keys its
// old-key.pub carries: kid, when the key stopped signing, and the day
// after which it may be dropped.
const OldKeysAnnotation = "bound-token.io/old-keys"

// OldKey is one public key carried in old-key.pub.
type OldKey struct {
	KeyID string `json:"kid"`
	// Retired is when the key stopped signing (the rotation away from it).
	Retired time.Time `json:"retired"`
	// DropAfter is the day after which no token it signed can be valid.
	DropAfter string `json:"dropAfter"`
}

func dropAfter(retired time.Time, keep time.Duration) string {
	return retired.Add(keep).UTC().Format(time.DateOnly)
}

// ParseOldKeys reads OldKeysAnnotation; a missing or unreadable one gives
// none (the keys are then treated as retired now: kept for a full window).
func ParseOldKeys(annotations map[string]string) map[string]OldKey {
	out := map[string]OldKey{}
	var list []OldKey
	if json.Unmarshal([]byte(annotations[OldKeysAnnotation]), &list) != nil {
		return out
	}
	for _, k := range list {
		out[k.KeyID] = k
	}
	return out
}

func formatOldKeys(ks []OldKey) string {
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].Retired.After(ks[j].Retired) })
	b, _ := json.Marshal(ks)
	return string(b)
}

// ParseOldPublicKeys reads old-key.pub as HyperShift uses it: appended to
// the current public key for kube-apiserver's --service-account-key-file,
// which reads every PEM block (serviceAccountSigningKeyBytes). It must be
// PEM public keys only.
func ParseOldPublicKeys(data []byte) (*jwt.KeySet, error) {
	ks, err := jwt.ParsePEM(data)
	if err != nil {
		return nil, err
	}
	if len(ks.Keys) == 0 {
		return nil, fmt.Errorf("no PEM public key")
	}
	for rest := data; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" && blk.Type != "RSA PUBLIC KEY" && blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a %q block is not a public key", blk.Type)
		}
	}
	return ks, nil
}
