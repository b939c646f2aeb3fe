package verify

import (
	"context"
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
)

// DefaultLeeway absorbs clock skew between the issuer and this machine; it
// matches go-jose's default (jwt.DefaultLeeway in go-jose/v4/jwt).
const DefaultLeeway = time.Minute

// Verdict is one token's outcome: what the token says (when it decodes),
// whether it is verified, and every reason it is not.
type Verdict struct {
	metav1.TypeMeta `json:",inline"`
	Header          map[string]any `json:"header"`
	Payload         map[string]any `json:"payload"`
	Legacy          bool           `json:"legacy"`
	Verified        bool           `json:"verified"`
	// Errors is never nil, so that JSON shows [] for a verified token.
	Errors      []string `json:"errors"`
	Warnings    []string `json:"warnings,omitempty"`
	KeyID       string   `json:"keyID,omitempty"`
	Algorithm   string   `json:"algorithm,omitempty"`
	TokenReview *Review  `json:"tokenReview,omitempty"`
	// Line is the token's line of input in a batch.
	Line int `json:"line,omitempty"`
	// Token is the decoded token, nil when it does not decode.
	Token *jwt.Token `json:"-"`
}

// DeepCopyObject makes a verdict printable by cli-runtime's printers.
func (v *Verdict) DeepCopyObject() runtime.Object {
	c := *v
	c.Header, c.Payload = maps.Clone(v.Header), maps.Clone(v.Payload)
	c.Errors = append([]string{}, v.Errors...)
	c.Warnings = append([]string(nil), v.Warnings...)
	if v.TokenReview != nil {
		r := *v.TokenReview
		c.TokenReview = &r
	}
	return &c
}

func (v *Verdict) setToken(t *jwt.Token) {
	v.Token, v.Header, v.Payload, v.Legacy = t, t.HeaderMap(), t.PayloadMap(), t.Claims.IsLegacy()
}

// Checks are what a Checker asks of every token.
type Checks struct {
	// TokenReview asks the cluster (Sources.Cluster) instead of checking
	// offline; Audiences are then sent with the review.
	TokenReview bool
	Sources     Sources
	// Issuers: iss must be one of them; with Sources.OIDCIssuer and none
	// given, it must be that issuer.
	Issuers []string
	// Audiences: aud must hold one of them.
	Audiences []string
	Leeway    time.Duration
	Now       func() time.Time
}

// Checker verifies tokens against keys (or the cluster) fetched once, so a
// batch pays for them once.
type Checker struct {
	checks Checks
	keys   *jwt.KeySet
	opts   jwt.Options
}

// NewChecker loads the keys c names (nothing for a TokenReview).
func NewChecker(ctx context.Context, c Checks) (*Checker, error) {
	ch := &Checker{checks: c}
	if c.TokenReview {
		if c.Sources.Cluster == nil {
			return nil, errNoCluster
		}
		return ch, nil
	}
	keys, err := c.Sources.Load(ctx)
	if err != nil {
		return nil, err
	}
	issuers := c.Issuers
	if c.Sources.OIDCIssuer != "" && len(issuers) == 0 {
		issuers = []string{c.Sources.OIDCIssuer}
	}
	ch.keys, ch.opts = keys, jwt.Options{Issuers: issuers, Audiences: c.Audiences, Leeway: c.Leeway, Now: c.Now}
	return ch, nil
}

// Source names where the answer comes from, for messages.
func (c *Checker) Source() string {
	if c.checks.TokenReview {
		return "the cluster's TokenReview API"
	}
	return c.checks.Sources.Describe()
}

// IssuerChecked and AudienceChecked tell whether the verdict covered them.
func (c *Checker) IssuerChecked() bool   { return len(c.opts.Issuers) > 0 }
func (c *Checker) AudienceChecked() bool { return len(c.checks.Audiences) > 0 }

// Check judges one token. It returns an error only when no answer could be
// had (the TokenReview failed), never for a rejected token.
func (c *Checker) Check(ctx context.Context, raw string) (*Verdict, error) {
	v := &Verdict{Errors: []string{}}
	if c.checks.TokenReview {
		if t, err := jwt.Decode(raw); err == nil {
			v.setToken(t)
		}
		r, err := TokenReview(ctx, c.checks.Sources.Cluster, raw, c.checks.Audiences)
		if err != nil {
			return nil, err
		}
		v.TokenReview = r
		if r.Authenticated {
			v.Verified = true
		} else {
			v.Errors = append(v.Errors, "TokenReview: "+r.Error)
		}
		return v, nil
	}
	r := jwt.Verify(raw, c.keys, c.opts)
	v.Warnings, v.KeyID, v.Algorithm = r.Warnings, r.KeyID, r.Algorithm
	if r.Errors != nil {
		v.Errors = r.Errors
	}
	if r.Token != nil {
		v.setToken(r.Token)
	}
	v.Verified = r.Valid()
	return v, nil
}
