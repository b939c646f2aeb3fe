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
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// MaxTokenSize caps input: a real token is a few KiB; anything near this is
// an attack or a wrong file.
const MaxTokenSize = 1 << 20

// LegacyIssuer is the iss of Secret-based tokens.
const LegacyIssuer = "kubernetes/serviceaccount"

// Token is a decoded, unverified token.
type Token struct {
	Raw    string
	Header Header
	Claims Claims

	headerJSON, payloadJSON []byte
	signingInput            []byte
	signature               []byte
}

// Header is the JOSE header, typed where Verify needs it.
type Header struct {
	Algorithm string
	KeyID     string
	// Names lists the members other than alg, kid and typ, in token order:
	// Verify refuses the ones that would let a token choose its own key.
	Names []string
	// Crit is the raw JSON of the crit member, if any.
	Crit string
	// Problems lists members of the wrong JSON type.
	Problems []string
}

// Has reports whether the header carries member name.
func (h Header) Has(name string) bool { return slices.Contains(h.Names, name) }

// HeaderMap is the header as generic JSON, numbers kept as written, for
// display. It is nil if encoding/json disagrees with the fast parser.
func (t *Token) HeaderMap() map[string]any { return asMap(t.headerJSON) }

// PayloadMap is the payload as generic JSON, for display.
func (t *Token) PayloadMap() map[string]any { return asMap(t.payloadJSON) }

func asMap(b []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	return m
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
	// The input is only read, never written, so it is viewed as bytes
	// without a copy; one buffer holds the three decoded parts. Allocations
	// are most of the cost beside the signature check.
	in := unsafe.Slice(unsafe.StringData(raw), len(raw))
	enc := base64.RawURLEncoding
	out := make([]byte, enc.DecodedLen(len(in)))
	hb, err := decodeSegment(out, in[:i])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: header is not base64url: %v", err)
	}
	pb, err := decodeSegment(out[len(hb):], in[i+1:j])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not base64url: %v", err)
	}
	sig, err := decodeSegment(out[len(hb)+len(pb):], in[j+1:])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: signature is not base64url: %v", err)
	}
	t := &Token{Raw: raw, signingInput: in[:j], signature: sig, headerJSON: hb, payloadJSON: pb}
	// fastjson parses a token about eight times faster than encoding/json
	// into maps, which keeps offline verify close to the raw signature cost.
	p := parsers.Get()
	defer parsers.Put(p)
	hv, err := parseObject(p, hb)
	if err != nil {
		return nil, fmt.Errorf("not a JWT: header is not a JSON object: %v", err)
	}
	t.Header = parseHeader(hv)
	pv, err := parseObject(p, pb)
	if err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not a JSON object: %v", err)
	}
	t.Claims = parseClaims(pv)
	return t, nil
}

var parsers fastjson.ParserPool

// parseObject accepts one JSON object whose member names are unique at the
// top level: with duplicates, parsers disagree on which value counts.
func parseObject(p *fastjson.Parser, b []byte) (*fastjson.Value, error) {
	// The parser is lenient (numbers like 1-0 pass); the validator is
	// strict JSON, which keeps it in step with encoding/json.
	if err := fastjson.ValidateBytes(b); err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	v, err := p.ParseBytes(b)
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("found %s", v.Type())
	}
	if dup := duplicateKey(o); dup != "" {
		return nil, fmt.Errorf("member %q appears twice", clip(dup))
	}
	return v, nil
}

func duplicateKey(o *fastjson.Object) string {
	n := o.Len()
	if n < 2 {
		return ""
	}
	// Tokens have a dozen members at most: a quadratic scan beats a map.
	var buf [32][]byte
	keys := buf[:0]
	dup := ""
	o.Visit(func(k []byte, _ *fastjson.Value) {
		if dup != "" {
			return
		}
		for _, seen := range keys {
			if bytes.Equal(seen, k) {
				dup = string(k)
				return
			}
		}
		keys = append(keys, k)
	})
	return dup
}

func parseHeader(v *fastjson.Value) Header {
	var h Header
	o, _ := v.Object()
	o.Visit(func(k []byte, val *fastjson.Value) {
		switch name := string(k); name {
		case "typ":
		case "alg", "kid":
			s, err := val.StringBytes()
			if err != nil {
				h.Problems = append(h.Problems, "header "+name+" is not a string")
				return
			}
			if name == "alg" {
				h.Algorithm = string(s)
			} else {
				h.KeyID = string(s)
			}
		default:
			h.Names = append(h.Names, name)
			if name == "crit" {
				h.Crit = clip(val.String())
			}
		}
	})
	return h
}

// decodeSegment decodes src into the front of dst and returns that part.
func decodeSegment(dst, src []byte) ([]byte, error) {
	// Tokens are unpadded; tolerate padding from hand-made inputs.
	src = bytes.TrimRight(src, "=")
	n, err := base64.RawURLEncoding.Decode(dst, src)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("bad character at offset %d", int64(ce))
		}
		return nil, errors.New("bad encoding")
	}
	return dst[:n:n], nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// claimParser reads claims in one pass, without closures or string
// building on the happy path: this runs for every token of a batch.
type claimParser struct {
	c     Claims
	times [4]time.Time
}

func (cp *claimParser) problem(format string, a ...any) {
	cp.c.Problems = append(cp.c.Problems, fmt.Sprintf(format, a...))
}

func (cp *claimParser) str(v *fastjson.Value, path, member string) string {
	if v.Type() == fastjson.TypeNull {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		cp.problem("claim %s%s is not a string", path, member)
	}
	return string(b)
}

func (cp *claimParser) num(v *fastjson.Value, path string, slot int) *time.Time {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	f, err := v.Float64()
	if err != nil {
		cp.problem("claim %s is not a number", path)
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e12 {
		cp.problem("claim %s is out of range", path)
		return nil
	}
	sec, frac := math.Modf(f)
	cp.times[slot] = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return &cp.times[slot]
}

func (cp *claimParser) ref(v *fastjson.Value, path string) *ObjectRef {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		cp.problem("claim %s is not an object", path)
		return nil
	}
	r := &ObjectRef{}
	if m := o.Get("name"); m != nil {
		r.Name = cp.str(m, path, ".name")
	}
	if m := o.Get("uid"); m != nil {
		r.UID = cp.str(m, path, ".uid")
	}
	return r
}

const legacyPrefix = "kubernetes.io/serviceaccount/"

func (cp *claimParser) top(k []byte, v *fastjson.Value) {
	c := &cp.c
	switch string(k) {
	case "iss":
		c.Issuer = cp.str(v, "iss", "")
	case "sub":
		c.Subject = cp.str(v, "sub", "")
	case "jti":
		c.ID = cp.str(v, "jti", "")
	case "aud":
		switch v.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeString:
			c.Audience = []string{cp.str(v, "aud", "")}
		case fastjson.TypeArray:
			items, _ := v.Array()
			for _, it := range items {
				if it.Type() != fastjson.TypeString {
					cp.problem("claim aud holds a non-string")
					continue
				}
				c.Audience = append(c.Audience, cp.str(it, "aud", ""))
			}
		default:
			cp.problem("claim aud is neither a string nor a list")
		}
	case "exp":
		c.Expiry = cp.num(v, "exp", 0)
	case "iat":
		c.IssuedAt = cp.num(v, "iat", 1)
	case "nbf":
		c.NotBefore = cp.num(v, "nbf", 2)
	case "kubernetes.io":
		cp.kubernetes(v)
	case legacyPrefix + "namespace":
		cp.legacy().Namespace = cp.str(v, legacyPrefix+"namespace", "")
	case legacyPrefix + "secret.name":
		cp.legacy().SecretName = cp.str(v, legacyPrefix+"secret.name", "")
	case legacyPrefix + "service-account.name":
		cp.legacy().ServiceAccountName = cp.str(v, legacyPrefix+"service-account.name", "")
	case legacyPrefix + "service-account.uid":
		cp.legacy().ServiceAccountUID = cp.str(v, legacyPrefix+"service-account.uid", "")
	}
}

func (cp *claimParser) legacy() *LegacyClaims {
	if cp.c.Legacy == nil {
		cp.c.Legacy = &LegacyClaims{}
	}
	return cp.c.Legacy
}

func (cp *claimParser) kubernetes(v *fastjson.Value) {
	if v.Type() == fastjson.TypeNull {
		return
	}
	ko, err := v.Object()
	if err != nil {
		cp.problem("claim kubernetes.io is not an object")
		return
	}
	if dup := duplicateKey(ko); dup != "" {
		cp.problem("claim kubernetes.io has member %q twice", clip(dup))
	}
	kc := &KubernetesClaims{}
	if m := ko.Get("namespace"); m != nil {
		kc.Namespace = cp.str(m, "kubernetes.io.namespace", "")
	}
	if m := ko.Get("serviceaccount"); m != nil {
		if sa := cp.ref(m, "kubernetes.io.serviceaccount"); sa != nil {
			kc.ServiceAccount = *sa
		}
	}
	if m := ko.Get("pod"); m != nil {
		kc.Pod = cp.ref(m, "kubernetes.io.pod")
	}
	if m := ko.Get("secret"); m != nil {
		kc.Secret = cp.ref(m, "kubernetes.io.secret")
	}
	if m := ko.Get("node"); m != nil {
		kc.Node = cp.ref(m, "kubernetes.io.node")
	}
	if m := ko.Get("warnafter"); m != nil {
		kc.WarnAfter = cp.num(m, "kubernetes.io.warnafter", 3)
	}
	cp.c.Kubernetes = kc
}

func parseClaims(p *fastjson.Value) Claims {
	cp := &claimParser{}
	o, _ := p.Object()
	o.Visit(cp.top)
	if cp.c.Issuer == LegacyIssuer {
		cp.legacy()
	}
	return cp.c
}
