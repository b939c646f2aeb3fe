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

	// Storage for Claims' pointers, so a token costs few allocations.
	times [4]time.Time
	kube  KubernetesClaims
	refs  [3]ObjectRef
	aud   [2]string
}

// Header is the JOSE header, typed where Verify needs it.
type Header struct {
	Algorithm string
	KeyID     string
	// Names lists the members other than alg, kid and typ, in token order:
	// Verify refuses the ones that would let a token choose its own key.
	Names []string
	// Crit describes the crit member for messages: its names quoted, or
	// its JSON type.
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
	j := -1
	if i >= 0 {
		if k := strings.IndexByte(raw[i+1:], '.'); k >= 0 {
			j = i + 1 + k
		}
	}
	if j < 0 || strings.IndexByte(raw[j+1:], '.') >= 0 {
		return nil, fmt.Errorf("not a JWT: want 3 dot-separated parts, found %d", strings.Count(raw, ".")+1)
	}
	// The input is only read, never written, so it is viewed as bytes
	// without a copy. One buffer holds the three decoded parts and, behind
	// them, the claim strings. Allocations are most of the cost beside the
	// signature check.
	in := unsafe.Slice(unsafe.StringData(raw), len(raw))
	n := base64.RawURLEncoding.DecodedLen(len(in))
	out := make([]byte, n, 2*n)
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
	cp := claimParser{t: t, arena: out[n:n]}
	cp.header(hv)
	pv, err := parseObject(p, pb)
	if err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not a JSON object: %v", err)
	}
	cp.claims(pv)
	return t, nil
}

var parsers fastjson.ParserPool

// parseObject accepts one JSON object whose member names are unique at the
// top level: with duplicates, parsers disagree on which value counts.
func parseObject(p *fastjson.Parser, b []byte) (*fastjson.Value, error) {
	// The parser is lenient (numbers like 1-0 pass); the validator is
	// strict JSON, which keeps it in step with encoding/json.
	if fastjson.ValidateBytes(b) != nil {
		return nil, syntaxError(b)
	}
	v, err := p.ParseBytes(b)
	if err != nil {
		return nil, syntaxError(b)
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

// syntaxError describes bad JSON without fastjson's messages, which copy
// the input (raw control characters included) into the text.
func syntaxError(b []byte) error {
	var v any
	var se *json.SyntaxError
	if err := json.Unmarshal(b, &v); errors.As(err, &se) {
		return fmt.Errorf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return errors.New("invalid JSON")
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

func (cp *claimParser) header(v *fastjson.Value) {
	o, _ := v.Object()
	o.Visit(cp.headerMember)
}

func (cp *claimParser) headerMember(k []byte, val *fastjson.Value) {
	h := &cp.t.Header
	switch string(k) {
	case "typ":
	case "alg", "kid":
		s, err := val.StringBytes()
		if err != nil {
			h.Problems = append(h.Problems, "header "+string(k)+" is not a string")
			return
		}
		if k[0] == 'a' {
			h.Algorithm = cp.intern(s)
		} else {
			h.KeyID = cp.intern(s)
		}
	default:
		name := cp.intern(k)
		h.Names = append(h.Names, name)
		if name == "crit" {
			h.Crit = describeCrit(val)
		}
	}
}

func describeCrit(v *fastjson.Value) string {
	items, err := v.Array()
	if err != nil {
		return "(a JSON " + v.Type().String() + ")"
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		b, err := it.StringBytes()
		if err != nil {
			names = append(names, "(a JSON "+it.Type().String()+")")
			continue
		}
		names = append(names, string(b))
	}
	return quoteList(names)
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

// claimParser reads the header and claims in one pass each, without
// closures or per-string allocations on the happy path: this runs for
// every token of a batch.
type claimParser struct {
	t     *Token
	arena []byte // backs every string taken from the JSON
}

// intern copies b out of the pooled parser's buffer. Appends only write
// past the strings already handed out, which therefore never change.
func (cp *claimParser) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(cp.arena)
	cp.arena = append(cp.arena, b...)
	return unsafe.String(&cp.arena[start], len(b))
}

func (cp *claimParser) problem(format string, a ...any) {
	cp.t.Claims.Problems = append(cp.t.Claims.Problems, fmt.Sprintf(format, a...))
}

func (cp *claimParser) str(v *fastjson.Value, path, member string) string {
	if v.Type() == fastjson.TypeNull {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		cp.problem("claim %s%s is not a string", path, member)
	}
	return cp.intern(b)
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
	cp.t.times[slot] = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return &cp.t.times[slot]
}

// ref fills r and reports whether the claim held an object.
func (cp *claimParser) ref(v *fastjson.Value, path string, r *ObjectRef) bool {
	if v.Type() == fastjson.TypeNull {
		return false
	}
	o, err := v.Object()
	if err != nil {
		cp.problem("claim %s is not an object", path)
		return false
	}
	if m := o.Get("name"); m != nil {
		r.Name = cp.str(m, path, ".name")
	}
	if m := o.Get("uid"); m != nil {
		r.UID = cp.str(m, path, ".uid")
	}
	return true
}

const legacyPrefix = "kubernetes.io/serviceaccount/"

func (cp *claimParser) top(k []byte, v *fastjson.Value) {
	c := &cp.t.Claims
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
			c.Audience = append(cp.t.aud[:0], cp.str(v, "aud", ""))
		case fastjson.TypeArray:
			items, _ := v.Array()
			bad := false
			for _, it := range items {
				if it.Type() != fastjson.TypeString {
					if !bad {
						cp.problem("claim aud holds a non-string")
						bad = true
					}
					continue
				}
				if c.Audience == nil {
					c.Audience = cp.t.aud[:0]
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
	c := &cp.t.Claims
	if c.Legacy == nil {
		c.Legacy = &LegacyClaims{}
	}
	return c.Legacy
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
	t := cp.t
	kc := &t.kube
	if m := ko.Get("namespace"); m != nil {
		kc.Namespace = cp.str(m, "kubernetes.io.namespace", "")
	}
	if m := ko.Get("serviceaccount"); m != nil {
		cp.ref(m, "kubernetes.io.serviceaccount", &kc.ServiceAccount)
	}
	if m := ko.Get("pod"); m != nil && cp.ref(m, "kubernetes.io.pod", &t.refs[0]) {
		kc.Pod = &t.refs[0]
	}
	if m := ko.Get("secret"); m != nil && cp.ref(m, "kubernetes.io.secret", &t.refs[1]) {
		kc.Secret = &t.refs[1]
	}
	if m := ko.Get("node"); m != nil && cp.ref(m, "kubernetes.io.node", &t.refs[2]) {
		kc.Node = &t.refs[2]
	}
	if m := ko.Get("warnafter"); m != nil {
		kc.WarnAfter = cp.num(m, "kubernetes.io.warnafter", 3)
	}
	t.Claims.Kubernetes = kc
}

func (cp *claimParser) claims(p *fastjson.Value) {
	o, _ := p.Object()
	o.Visit(cp.top)
	if cp.t.Claims.Issuer == LegacyIssuer {
		cp.legacy()
	}
}
