// Package keys makes and stores ServiceAccount signing keys and builds the
// documents a self-hosted issuer publishes: JWKS and OIDC discovery.
//
// It must not import any other package of this module except pkg/fileutil
// and pkg/jwt.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// Types are the key types kube-apiserver can sign with.
var Types = []string{"rsa2048", "rsa4096", "ec256"}

// Pair is a freshly generated signing key.
type Pair struct {
	Private crypto.Signer
	KeyID   string
	// PrivatePEM is PKCS#1 (RSA) or SEC1 (EC) unless PKCS#8 was asked for.
	PrivatePEM []byte
	PublicPEM  []byte
}

// Generate makes a key of the given type.
func Generate(typ string, pkcs8 bool) (*Pair, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch typ {
	case "rsa2048":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa4096":
		priv, err = rsa.GenerateKey(rand.Reader, 4096)
	case "ec256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, &InvalidError{Field: FieldType, Value: typ, Reason: "is not supported; use one of " + strings.Join(Types, ", ")}
	}
	if err != nil {
		return nil, err
	}
	return NewPair(priv, pkcs8)
}

// NewPair encodes an existing key.
func NewPair(priv crypto.Signer, pkcs8 bool) (*Pair, error) {
	p := &Pair{Private: priv}
	var blk *pem.Block
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		blk = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	default:
		return nil, fmt.Errorf("unsupported key type %T", priv)
	}
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	p.PrivatePEM = pem.EncodeToMemory(blk)
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	p.PublicPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if p.KeyID, err = jwt.KeyID(priv.Public()); err != nil {
		return nil, err
	}
	return p, nil
}

// File names inside --out-dir, matching kube-apiserver's flag names.
const (
	PrivateFile = "sa.key"
	PublicFile  = "sa.pub"
)

// ErrKeyExists is the answer when a key file or Secret is already there:
// losing a signing key invalidates every token it signed, so none is ever
// replaced.
var ErrKeyExists = errors.New("already exists: refusing to replace a signing key")

// InvalidError names an input of this package that cannot be used; the
// command layer words it with the flag that gave it.
type InvalidError struct {
	Field  string // one of the Field constants
	Value  string
	Reason string
}

// The inputs an InvalidError can name.
const (
	FieldType    = "key type"
	FieldFormat  = "secret format"
	FieldIssuer  = "issuer"
	FieldJWKSURI = "jwks_uri"
	FieldAlg     = "algorithm"
)

func (e *InvalidError) Error() string { return fmt.Sprintf("%s %q %s", e.Field, e.Value, e.Reason) }

// WriteFiles writes sa.key and sa.pub into dir, both 0600 in a 0700
// folder. Existing key files are never replaced: losing a signing key
// invalidates every token it signed.
func (p *Pair) WriteFiles(dir string) error {
	priv, pub := filepath.Join(dir, PrivateFile), filepath.Join(dir, PublicFile)
	for _, f := range []string{priv, pub} {
		if exists(f) {
			return fmt.Errorf("%s %w", f, ErrKeyExists)
		}
	}
	if err := fileutil.WriteSecretFile(priv, p.PrivatePEM, false); err != nil {
		return err
	}
	return fileutil.WriteSecretFile(pub, p.PublicPEM, false)
}

// Secret formats: generic holds sa.key and sa.pub; hypershift is what a
// HostedCluster's spec.serviceAccountSigningKey points at (key "key").
const (
	FormatGeneric    = "generic"
	FormatHyperShift = "hypershift"
)

var SecretFormats = []string{FormatGeneric, FormatHyperShift}

// HyperShiftKey is the data key HyperShift reads the private key from;
// HyperShiftOldPublicKey holds the previous public key during a rotation.
const (
	HyperShiftKey          = "key"
	HyperShiftOldPublicKey = "old-key.pub"
)

// SecretFor builds the Secret that stores the pair.
func (p *Pair) SecretFor(ns, name, format string) (*corev1.Secret, error) {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{"bound-token.io/kid": p.KeyID}},
		Type:       corev1.SecretTypeOpaque,
	}
	switch format {
	case "generic", "":
		s.Data = map[string][]byte{PrivateFile: p.PrivatePEM, PublicFile: p.PublicPEM}
	case "hypershift":
		// HyperShift reads "key" with x509.ParsePKCS1PrivateKey
		// (openshift/hypershift support/certs/tls.go, PemToPrivateKey, from
		// the hostedcluster controller's serviceAccountSigningKeyBytes).
		if blk, _ := pem.Decode(p.PrivatePEM); blk == nil || blk.Type != "RSA PRIVATE KEY" {
			return nil, fmt.Errorf("HyperShift reads only RSA signing keys in PKCS#1 form (\"RSA PRIVATE KEY\")")
		}
		s.Data = map[string][]byte{HyperShiftKey: p.PrivatePEM}
	default:
		return nil, &InvalidError{Field: FieldFormat, Value: format, Reason: "is not supported; use generic or hypershift"}
	}
	return s, nil
}

// CreateSecret stores the Secret; an existing one is never replaced.
func CreateSecret(ctx context.Context, cs kubernetes.Interface, s *corev1.Secret) error {
	_, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("secret %s/%s %w", s.Namespace, s.Name, ErrKeyExists)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to create secrets in namespace %q (RBAC verb \"create\" on \"secrets\")", s.Namespace)
	case err != nil:
		return fmt.Errorf("create secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// FromConfigMap reads every PEM value of a ConfigMap, e.g. OpenShift's
// openshift-config-managed/bound-sa-token-signing-certs, in key order.
func FromConfigMap(ctx context.Context, cs kubernetes.Interface, ns, name string) (*jwt.KeySet, error) {
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("configmap %s/%s not found", ns, name)
		}
		return nil, fmt.Errorf("get configmap %s/%s: %w", ns, name, err)
	}
	names := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	ks := &jwt.KeySet{}
	for _, k := range names {
		one, err := jwt.ParsePEM([]byte(cm.Data[k]))
		if err != nil {
			return nil, fmt.Errorf("configmap %s/%s key %s: %w", ns, name, k, err)
		}
		ks = ks.Merge(one)
	}
	return ks, nil
}

// WithLegacyEmptyKid adds, for each key, the duplicate with an empty kid
// that verifiers of tokens minted before Kubernetes 1.16 look for.
func WithLegacyEmptyKid(ks *jwt.KeySet) *jwt.KeySet {
	out := &jwt.KeySet{Keys: append([]jwt.Key{}, ks.Keys...)}
	for _, k := range ks.Keys {
		if k.ID != "" {
			out.Keys = append(out.Keys, jwt.Key{Algorithm: k.Algorithm, Public: k.Public})
		}
	}
	return out.Merge(nil)
}

// Discovery builds the openid-configuration document of a kube-apiserver
// issuer.
func Discovery(issuer, jwksURI string, algs []string) (*jwt.Discovery, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, &InvalidError{Field: FieldIssuer, Value: issuer, Reason: "must be an https URL without query or fragment"}
	}
	if jwksURI == "" {
		jwksURI = strings.TrimSuffix(issuer, "/") + "/openid/v1/jwks"
	}
	ju, err := url.Parse(jwksURI)
	if err != nil || ju.Scheme != "https" || ju.Host == "" {
		return nil, &InvalidError{Field: FieldJWKSURI, Value: jwksURI, Reason: "must be an https URL"}
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	for _, a := range algs {
		found := false
		for _, ok := range jwt.Algorithms {
			found = found || a == ok
		}
		if !found {
			return nil, &InvalidError{Field: FieldAlg, Value: a, Reason: "is not one kube-apiserver signs with (" + strings.Join(jwt.Algorithms, ", ") + ")"}
		}
	}
	return &jwt.Discovery{
		Issuer:                           issuer,
		JWKSURI:                          jwksURI,
		ResponseTypesSupported:           []string{"id_token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: algs,
	}, nil
}

// MarshalDocument renders a published document with stable indentation.
func MarshalDocument(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
