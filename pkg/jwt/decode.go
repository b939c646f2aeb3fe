// Package jwt decodes and verifies Kubernetes ServiceAccount tokens (compact
// JWS) and handles the keys that sign them. It never takes keys from a token
// and accepts only the algorithms kube-apiserver issues.
package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// MaxTokenSize caps input: a real token is a few KiB; anything near this is
// an attack or a wrong file.
const MaxTokenSize = 1 << 20

// LegacyIssuer is the iss of Secret-based tokens.
const LegacyIssuer = "kubernetes/serviceaccount"

// Token is a decoded, unverified token.
type Token struct {
	Raw     string
	Header  map[string]any
	Payload map[string]any
	Claims  Claims

	signingInput string
	signature    []byte
}

// Claims are the registered and Kubernetes claims, typed.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ID        string
	Expiry    *time.Time
	IssuedAt  *time.Time
	NotBefore *time.Time

	Kubernetes *KubernetesClaims
	Legacy     *LegacyClaims

	// Problems lists claims of the wrong JSON type; Verify rejects such tokens.
	Problems []string
}

// KubernetesClaims is the "kubernetes.io" block of bound tokens.
type KubernetesClaims struct {
	Namespace      string
	ServiceAccount ObjectRef
	Pod            *ObjectRef
	Secret         *ObjectRef
	Node           *ObjectRef
	WarnAfter      *time.Time
}

type ObjectRef struct {
	Name string
	UID  string
}

// LegacyClaims are the kubernetes.io/serviceaccount/* claims of Secret-based tokens.
type LegacyClaims struct {
	Namespace          string
	SecretName         string
	ServiceAccountName string
	ServiceAccountUID  string
}

// IsLegacy reports a Secret-based token: it never expires and has no audience.
func (c Claims) IsLegacy() bool { return c.Issuer == LegacyIssuer || c.Legacy != nil }

// ServiceAccount splits sub "system:serviceaccount:NS:NAME".
func (c Claims) ServiceAccount() (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(c.Subject, "system:serviceaccount:")
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != ""
}

// BoundObject names the object the token dies with; a Node listed beside a
// Pod only says where the pod ran.
func (t *Token) BoundObject() (kind string, ref *ObjectRef) {
	k := t.Claims.Kubernetes
	switch {
	case k == nil:
		return "", nil
	case k.Pod != nil:
		return "Pod", k.Pod
	case k.Secret != nil:
		return "Secret", k.Secret
	case k.Node != nil:
		return "Node", k.Node
	}
	return "", nil
}

// Decode parses a compact JWS without verifying it. Errors are one line and
// never contain the token.
func Decode(raw string) (*Token, error) {
	if len(raw) > MaxTokenSize {
		return nil, errors.New("input is larger than 1 MiB: not a token")
	}
	raw = strings.TrimSpace(raw)
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return nil, errors.New("empty input: no token")
	}
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	if i < 0 || i == j || strings.IndexByte(raw[i+1:j], '.') >= 0 {
		return nil, fmt.Errorf("not a JWT: want 3 dot-separated parts, found %d", strings.Count(raw, ".")+1)
	}
	hb, err := decodeSegment(raw[:i])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: header is not base64url: %v", err)
	}
	pb, err := decodeSegment(raw[i+1 : j])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not base64url: %v", err)
	}
	sig, err := decodeSegment(raw[j+1:])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: signature is not base64url: %v", err)
	}
	t := &Token{Raw: raw, signingInput: raw[:j], signature: sig}
	if t.Header, err = decodeObject(hb); err != nil {
		return nil, fmt.Errorf("not a JWT: header is not a JSON object: %v", err)
	}
	if t.Payload, err = decodeObject(pb); err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not a JSON object: %v", err)
	}
	t.Claims = parseClaims(t.Payload)
	return t, nil
}

func decodeSegment(s string) ([]byte, error) {
	// Tokens are unpadded; tolerate padding from hand-made inputs.
	s = strings.TrimRight(s, "=")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("bad character at offset %d", int64(ce))
		}
		return nil, errors.New("bad encoding")
	}
	return b, nil
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if dec.More() {
		return nil, errors.New("trailing data after the object")
	}
	return m, nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func parseClaims(p map[string]any) Claims {
	var c Claims
	str := func(m map[string]any, k, path string) string {
		v, ok := m[k]
		if !ok || v == nil {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			c.Problems = append(c.Problems, fmt.Sprintf("claim %s is not a string", path))
		}
		return s
	}
	num := func(m map[string]any, k, path string) *time.Time {
		v, ok := m[k]
		if !ok || v == nil {
			return nil
		}
		n, ok := v.(json.Number)
		if !ok {
			c.Problems = append(c.Problems, fmt.Sprintf("claim %s is not a number", path))
			return nil
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e12 {
			c.Problems = append(c.Problems, fmt.Sprintf("claim %s is out of range", path))
			return nil
		}
		sec, frac := math.Modf(f)
		t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
		return &t
	}
	ref := func(m map[string]any, k, path string) *ObjectRef {
		v, ok := m[k]
		if !ok || v == nil {
			return nil
		}
		o, ok := v.(map[string]any)
		if !ok {
			c.Problems = append(c.Problems, fmt.Sprintf("claim %s is not an object", path))
			return nil
		}
		return &ObjectRef{Name: str(o, "name", path+".name"), UID: str(o, "uid", path+".uid")}
	}

	c.Issuer = str(p, "iss", "iss")
	c.Subject = str(p, "sub", "sub")
	c.ID = str(p, "jti", "jti")
	switch a := p["aud"].(type) {
	case nil:
	case string:
		c.Audience = []string{a}
	case []any:
		for _, v := range a {
			s, ok := v.(string)
			if !ok {
				c.Problems = append(c.Problems, "claim aud holds a non-string")
				continue
			}
			c.Audience = append(c.Audience, s)
		}
	default:
		c.Problems = append(c.Problems, "claim aud is neither a string nor a list")
	}
	c.Expiry = num(p, "exp", "exp")
	c.IssuedAt = num(p, "iat", "iat")
	c.NotBefore = num(p, "nbf", "nbf")

	if v, ok := p["kubernetes.io"]; ok && v != nil {
		if k, ok := v.(map[string]any); ok {
			kc := &KubernetesClaims{Namespace: str(k, "namespace", "kubernetes.io.namespace")}
			if sa := ref(k, "serviceaccount", "kubernetes.io.serviceaccount"); sa != nil {
				kc.ServiceAccount = *sa
			}
			kc.Pod = ref(k, "pod", "kubernetes.io.pod")
			kc.Secret = ref(k, "secret", "kubernetes.io.secret")
			kc.Node = ref(k, "node", "kubernetes.io.node")
			kc.WarnAfter = num(k, "warnafter", "kubernetes.io.warnafter")
			c.Kubernetes = kc
		} else {
			c.Problems = append(c.Problems, "claim kubernetes.io is not an object")
		}
	}
	const lp = "kubernetes.io/serviceaccount/"
	if _, ok := p[lp+"namespace"]; ok || c.Issuer == LegacyIssuer {
		c.Legacy = &LegacyClaims{
			Namespace:          str(p, lp+"namespace", lp+"namespace"),
			SecretName:         str(p, lp+"secret.name", lp+"secret.name"),
			ServiceAccountName: str(p, lp+"service-account.name", lp+"service-account.name"),
			ServiceAccountUID:  str(p, lp+"service-account.uid", lp+"service-account.uid"),
		}
	}
	return c
}
