// Package verify gathers verification keys from where a cluster publishes
// them (its JWKS endpoint, an OIDC issuer, files) and asks the cluster's
// TokenReview API, the authoritative answer.
//
// It must not import any other package of this module except pkg/jwt and
// pkg/retry.
package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/retry"
)

// Sources lists where keys come from. When none is set the cluster's JWKS is
// used.
type Sources struct {
	JWKSFiles  []string
	PEMFiles   []string
	OIDCIssuer string
	HTTPClient *http.Client // for OIDCIssuer
	Cluster    kubernetes.Interface
}

func (s Sources) useCluster() bool {
	return len(s.JWKSFiles) == 0 && len(s.PEMFiles) == 0 && s.OIDCIssuer == ""
}

// Describe names the sources for messages.
func (s Sources) Describe() string {
	if s.useCluster() {
		return "the cluster's /openid/v1/jwks"
	}
	var parts []string
	for _, f := range s.JWKSFiles {
		parts = append(parts, "JWKS "+f)
	}
	for _, f := range s.PEMFiles {
		parts = append(parts, "key file "+f)
	}
	if s.OIDCIssuer != "" {
		parts = append(parts, "OIDC issuer "+s.OIDCIssuer)
	}
	return fmt.Sprint(parts)
}

// Load fetches every key once. An empty result is an error: verifying
// against no keys would reject everything and look like a forgery.
func (s Sources) Load(ctx context.Context) (*jwt.KeySet, error) {
	ks := &jwt.KeySet{}
	for _, f := range s.JWKSFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read JWKS file: %w", err)
		}
		one, err := jwt.ParseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("JWKS file %s: %w", f, err)
		}
		ks = ks.Merge(one)
	}
	for _, f := range s.PEMFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read key file: %w", err)
		}
		one, err := jwt.ParsePEM(b)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", f, err)
		}
		ks = ks.Merge(one)
	}
	if s.OIDCIssuer != "" {
		hc := s.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 30 * time.Second}
		}
		_, one, err := jwt.FetchDiscovery(ctx, hc, s.OIDCIssuer)
		if err != nil {
			return nil, err
		}
		ks = ks.Merge(one)
	}
	if s.useCluster() {
		one, err := ClusterJWKS(ctx, s.Cluster)
		if err != nil {
			return nil, err
		}
		ks = ks.Merge(one)
	}
	if len(ks.Keys) == 0 {
		return nil, fmt.Errorf("%s holds no usable verification keys", s.Describe())
	}
	return ks, nil
}

var errNoCluster = errors.New("no cluster client to ask")

// ErrJWKSForbidden: the cluster refused to serve /openid/v1/jwks.
var ErrJWKSForbidden = errors.New("the cluster refused /openid/v1/jwks (by default only group system:serviceaccounts may read it; bind ClusterRole system:service-account-issuer-discovery)")

// ErrJWKSNotServed: the cluster has no /openid/v1/jwks.
var ErrJWKSNotServed = errors.New("the cluster serves no /openid/v1/jwks (kube-apiserver older than 1.20 or its --service-account-jwks-uri disabled)")

// ClusterJWKS reads /openid/v1/jwks through the kubeconfig's credentials.
func ClusterJWKS(ctx context.Context, cs kubernetes.Interface) (*jwt.KeySet, error) {
	if cs == nil {
		return nil, errNoCluster
	}
	b, err := retry.Value(ctx, retry.Default, func(ctx context.Context) ([]byte, error) {
		return cs.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	})
	if err != nil {
		switch {
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return nil, ErrJWKSForbidden
		case apierrors.IsNotFound(err):
			return nil, ErrJWKSNotServed
		}
		return nil, fmt.Errorf("fetch the cluster's /openid/v1/jwks: %w", err)
	}
	ks, err := jwt.ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("the cluster's /openid/v1/jwks: %w", err)
	}
	return ks, nil
}

// LoadCAPool reads a PEM bundle of CA certificates into a pool of its own:
// a client given it trusts these CAs only, not the system's.
func LoadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// HTTPClient builds the client for OIDC discovery: it trusts roots only
// when given (nil means the system's CAs). Skipping TLS checks must be asked
// for explicitly; it is meant for test issuers.
func HTTPClient(roots *x509.CertPool, insecure bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	tr.TLSClientConfig.InsecureSkipVerify = insecure //nolint:gosec // explicit flag, for test issuers
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Review is the TokenReview answer, reduced to what a user needs.
type Review struct {
	Authenticated bool
	Username      string
	UID           string
	Groups        []string
	Audiences     []string
	Extra         map[string][]string
	Error         string
}

// TokenReview asks the cluster whether it accepts the token now. It sees
// what offline checks cannot: deleted bound objects, invalidated Secrets.
func TokenReview(ctx context.Context, cs kubernetes.Interface, token string, audiences []string) (*Review, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences}}
	// TokenReview stores nothing: safe to repeat after a lost answer.
	resp, err := retry.Value(ctx, retry.Default, func(ctx context.Context) (*authenticationv1.TokenReview, error) {
		return cs.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
	})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("not allowed to create tokenreviews (RBAC verb \"create\" on \"tokenreviews.authentication.k8s.io\", e.g. ClusterRole system:auth-delegator)")
		}
		return nil, fmt.Errorf("TokenReview: %w", err)
	}
	st := resp.Status
	r := &Review{
		Authenticated: st.Authenticated,
		Username:      st.User.Username,
		UID:           st.User.UID,
		Groups:        st.User.Groups,
		Audiences:     st.Audiences,
		Error:         st.Error,
	}
	if len(st.User.Extra) > 0 {
		r.Extra = map[string][]string{}
		for k, v := range st.User.Extra {
			r.Extra[k] = v
		}
	}
	if !r.Authenticated && r.Error == "" {
		r.Error = "the cluster does not accept this token"
	}
	return r, nil
}
