package framework

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	externaljwtv1 "k8s.io/externaljwt/apis/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// Signer is an external service-account token signer, the gRPC service
// kube-apiserver calls with --service-account-signing-endpoint
// (ExternalServiceAccountTokenSigner, GA in 1.36; k8s.io/externaljwt
// apis/v1 api.proto): it signs bound tokens with its own RSA key and
// answers FetchKeys with that key and, while ServeLegacyKey is on, the
// public key kube-controller-manager signs legacy token Secrets with,
// marked exclude_from_oidc_discovery as the proto says keys that only
// verify must be. kube-apiserver verifies every service-account token
// against FetchKeys' answer only (pkg/serviceaccount/externaljwt/plugin,
// keycache.go), so a signer that leaves the legacy key out makes every
// legacy token fail: what doctor must be able to tell.
type Signer struct {
	Socket string
	KeyID  string

	key       *rsa.PrivateKey
	legacy    crypto.PublicKey
	legacyKID string
	server    *grpc.Server

	mu          sync.Mutex
	serveLegacy bool
}

// StartSigner listens on a new Unix socket in dir. legacyPub is
// kube-controller-manager's public key (Cluster.PublicKeyFile's key).
func StartSigner(dir string, legacyPub crypto.PublicKey) (*Signer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	kid, err := jwt.KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	legacyKID, err := jwt.KeyID(legacyPub)
	if err != nil {
		return nil, err
	}
	s := &Signer{Socket: filepath.Join(dir, "signer.sock"), KeyID: kid, key: key, legacy: legacyPub, legacyKID: legacyKID, serveLegacy: true}
	_ = os.Remove(s.Socket)
	l, err := net.Listen("unix", s.Socket)
	if err != nil {
		return nil, err
	}
	s.server = grpc.NewServer()
	externaljwtv1.RegisterExternalJWTSignerServer(s.server, &signerService{s: s})
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// ServeLegacyKey turns the legacy key in FetchKeys' answer on or off.
func (s *Signer) ServeLegacyKey(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serveLegacy = on
}

// LegacyKeyID is the kid of kube-controller-manager's key.
func (s *Signer) LegacyKeyID() string { return s.legacyKID }

// Stop ends the server.
func (s *Signer) Stop() { s.server.Stop() }

type signerService struct {
	externaljwtv1.UnimplementedExternalJWTSignerServer
	s *Signer
}

// Sign returns the header and signature of claims; the header may hold
// only alg, kid and typ (api.proto, SignJWTResponse).
func (x *signerService) Sign(_ context.Context, req *externaljwtv1.SignJWTRequest) (*externaljwtv1.SignJWTResponse, error) {
	h, err := json.Marshal(map[string]string{"alg": "RS256", "kid": x.s.KeyID, "typ": "JWT"})
	if err != nil {
		return nil, err
	}
	header := base64.RawURLEncoding.EncodeToString(h)
	sum := sha256.Sum256([]byte(header + "." + req.Claims))
	sig, err := rsa.SignPKCS1v15(rand.Reader, x.s.key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	return &externaljwtv1.SignJWTResponse{Header: header, Signature: base64.RawURLEncoding.EncodeToString(sig)}, nil
}

// FetchKeys answers with a short refresh hint, so that a test that
// changes the key set sees kube-apiserver pick it up within seconds.
func (x *signerService) FetchKeys(context.Context, *externaljwtv1.FetchKeysRequest) (*externaljwtv1.FetchKeysResponse, error) {
	der, err := x509.MarshalPKIXPublicKey(&x.s.key.PublicKey)
	if err != nil {
		return nil, err
	}
	keys := []*externaljwtv1.Key{{KeyId: x.s.KeyID, Key: der}}
	x.s.mu.Lock()
	legacy := x.s.serveLegacy
	x.s.mu.Unlock()
	if legacy {
		lder, err := x509.MarshalPKIXPublicKey(x.s.legacy)
		if err != nil {
			return nil, err
		}
		keys = append(keys, &externaljwtv1.Key{KeyId: x.s.legacyKID, Key: lder, ExcludeFromOidcDiscovery: true})
	}
	return &externaljwtv1.FetchKeysResponse{Keys: keys, DataTimestamp: timestamppb.Now(), RefreshHintSeconds: 2}, nil
}

// Metadata: the longest token kube-apiserver may request (a day; at least
// 600 s, api.proto MetadataResponse).
func (x *signerService) Metadata(context.Context, *externaljwtv1.MetadataRequest) (*externaljwtv1.MetadataResponse, error) {
	return &externaljwtv1.MetadataResponse{MaxTokenExpirationSeconds: int64((24 * time.Hour).Seconds())}, nil
}
