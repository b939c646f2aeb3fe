// Package jwt decodes and verifies Kubernetes ServiceAccount tokens (compact
// JWS) and handles the keys that sign them. It never takes keys from a token
// and accepts only the algorithms kube-apiserver issues.
//
// It owns token decoding, signature and claim checks, and key parsing; it
// uses go-jose only to read and write JWK sets, never to verify. It must
// not import any other package of this module except pkg/internal/text,
// nor any Kubernetes package (k8s.io/...): it reads bytes it is given, and
// pkg/verify, pkg/oidc, pkg/keys, pkg/doctor, pkg/hypershift and pkg/cmd
// fetch them.
package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
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
	// nonCanonical lists segments spelled in a way Decode tolerates and
	// Verify refuses (see decodeSegment).
	nonCanonical []string

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
// display. It is nil if encoding/json disagrees with Decode's reader.
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
	hb, oddH, err := decodeSegment(out, in[:i])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: header is not base64url: %v", err)
	}
	pb, oddP, err := decodeSegment(out[len(hb):], in[i+1:j])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not base64url: %v", err)
	}
	sig, oddS, err := decodeSegment(out[len(hb)+len(pb):], in[j+1:])
	if err != nil {
		return nil, fmt.Errorf("not a JWT: signature is not base64url: %v", err)
	}
	t := &Token{Raw: raw, signingInput: in[:j], signature: sig, headerJSON: hb, payloadJSON: pb}
	for n, odd := range [...]string{oddH, oddP, oddS} {
		if odd != "" {
			t.nonCanonical = append(t.nonCanonical, [...]string{"header", "payload", "signature"}[n]+" has "+odd)
		}
	}
	cp := claimParser{t: t}
	cp.r.arena = out[n:n]
	if err := cp.document(hb, true); err != nil {
		return nil, fmt.Errorf("not a JWT: header is not a JSON object: %v", err)
	}
	if err := cp.document(pb, false); err != nil {
		return nil, fmt.Errorf("not a JWT: payload is not a JSON object: %v", err)
	}
	if t.Claims.Issuer == LegacyIssuer {
		cp.legacy()
	}
	return t, nil
}

// document reads b, which must be one JSON object whose member names are
// unique, as the token's header or its claims.
func (cp *claimParser) document(b []byte, header bool) error {
	r := &cp.r
	r.reset(b)
	if k := r.kind(); k != objectKind {
		r.skip()
		r.end()
		if r.bad {
			return syntaxError(b)
		}
		return fmt.Errorf("found %s", k)
	}
	var seen members
	dup := ""
	r.open()
	for n := 0; r.next('}', &n); {
		name := r.key()
		if r.bad {
			break
		}
		if seen.repeated(name) && dup == "" {
			dup = string(name)
		}
		if header {
			cp.headerMember(name)
		} else {
			cp.claim(name)
		}
	}
	r.end()
	if r.bad {
		return syntaxError(b)
	}
	if dup != "" {
		return fmt.Errorf("member %q appears twice", clip(dup))
	}
	return nil
}

// syntaxError describes bad JSON in encoding/json's words, which show at
// most one character of the input, escaped.
func syntaxError(b []byte) error {
	var v any
	var se *json.SyntaxError
	if err := json.Unmarshal(b, &v); errors.As(err, &se) {
		return fmt.Errorf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return errors.New("invalid JSON")
}

func (cp *claimParser) headerMember(name []byte) {
	h := &cp.t.Header
	r := &cp.r
	switch string(name) {
	case "alg", "kid":
		if r.kind() != stringKind {
			r.skip()
			h.Problems = append(h.Problems, "header "+string(name)+" is not a string")
			return
		}
		if name[0] == 'a' {
			h.Algorithm = view(r.str())
		} else {
			h.KeyID = view(r.str())
		}
	case "typ":
		r.skip()
	default:
		h.Names = append(h.Names, view(name))
		if string(name) == "crit" {
			h.Crit = cp.describeCrit()
		} else {
			r.skip()
		}
	}
}

func (cp *claimParser) describeCrit() string {
	r := &cp.r
	if k := r.kind(); k != arrayKind {
		r.skip()
		return "(a JSON " + k.String() + ")"
	}
	var names []string
	r.open()
	for n := 0; r.next(']', &n); {
		if k := r.kind(); k != stringKind {
			r.skip()
			names = append(names, "(a JSON "+k.String()+")")
			continue
		}
		names = append(names, view(r.str()))
	}
	return quoteList(names)
}

// base64URLValue maps a byte to its base64url value (RFC 4648 §5), or -1:
// a table, because every byte of every token goes through it.
var base64URLValue = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		v[c] = int8(i)
	}
	return v
}()

// decodeSegment decodes src into the front of dst and returns that part.
//
// Only the base64url alphabet is data (RFC 7515 §2, RFC 4648 §5). Go's
// decoder skips CR and LF anywhere, so without this check "ab\ncd" would
// decode like "abcd" while the signature covers the bytes as sent.
//
// Two spellings decode to the same bytes and are tolerated here, for
// hand-made input to decode: '=' padding, which RFC 7515 §2 omits, and set
// unused bits in the last character (RFC 4648 §3.5). odd names them, and
// Verify refuses such a token: its signature covers the text, so accepting
// both spellings would let one signed token be written several ways, and
// go-jose (RawURLEncoding, signing input rebuilt from the decoded bytes)
// would reject what the spelling signed.
func decodeSegment(dst, src []byte) (seg []byte, odd string, err error) {
	data := bytes.TrimRight(src, "=")
	if len(data) != len(src) {
		odd = "'=' padding"
	}
	for i, c := range data {
		if base64URLValue[c] < 0 {
			return nil, "", fmt.Errorf("bad character at offset %d", i)
		}
	}
	n, err := base64.RawURLEncoding.Decode(dst, data)
	if err != nil {
		// Every byte is in the alphabet: only the length can be wrong.
		return nil, "", fmt.Errorf("bad length (%d characters)", len(data))
	}
	// The last character of a 2- or 3-character group carries 4 or 2 bits
	// that belong to no byte; the canonical encoding leaves them zero.
	if rem := len(data) % 4; rem > 1 {
		unused := int8(1)<<(2*(4-rem)) - 1
		if base64URLValue[data[len(data)-1]]&unused != 0 {
			odd = strings.TrimPrefix(odd+" and unused bits set in its last character", " and ")
		}
	}
	return dst[:n:n], odd, nil
}

// claimParser reads the header and claims as the reader meets them,
// without per-string allocations on the happy path: this runs for every
// token of a batch. Strings are views of the token's decoded parts, which
// never change after Decode.
type claimParser struct {
	t *Token
	r reader
}

func (cp *claimParser) problem(format string, a ...any) {
	cp.t.Claims.Problems = append(cp.t.Claims.Problems, fmt.Sprintf(format, a...))
}

func (cp *claimParser) str(path, member string) string {
	r := &cp.r
	switch r.kind() {
	case stringKind:
		return view(r.str())
	case nullKind:
		r.skip()
		return ""
	}
	r.skip()
	cp.problem("claim %s%s is not a string", path, member)
	return ""
}

func (cp *claimParser) num(path string, slot int) *time.Time {
	r := &cp.r
	switch r.kind() {
	case numberKind:
	case nullKind:
		r.skip()
		return nil
	default:
		r.skip()
		cp.problem("claim %s is not a number", path)
		return nil
	}
	f, err := strconv.ParseFloat(view(r.number()), 64)
	if err != nil || f < 0 || f > 1e12 {
		cp.problem("claim %s is out of range", path)
		return nil
	}
	sec, frac := math.Modf(f)
	cp.t.times[slot] = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return &cp.t.times[slot]
}

// ref fills ref and reports whether the claim held an object.
func (cp *claimParser) ref(path string, ref *ObjectRef) bool {
	r := &cp.r
	switch r.kind() {
	case objectKind:
	case nullKind:
		r.skip()
		return false
	default:
		r.skip()
		cp.problem("claim %s is not an object", path)
		return false
	}
	var seen members
	r.open()
	for n := 0; r.next('}', &n); {
		name := r.key()
		if seen.repeated(name) {
			cp.problem("claim %s has member %q twice", path, clip(string(name)))
		}
		switch string(name) {
		case "name":
			ref.Name = cp.str(path, ".name")
		case "uid":
			ref.UID = cp.str(path, ".uid")
		default:
			r.skip()
		}
	}
	return true
}

const legacyPrefix = "kubernetes.io/serviceaccount/"

func (cp *claimParser) claim(name []byte) {
	c := &cp.t.Claims
	switch string(name) {
	case "iss":
		c.Issuer = cp.str("iss", "")
	case "sub":
		c.Subject = cp.str("sub", "")
	case "jti":
		c.ID = cp.str("jti", "")
	case "aud":
		cp.audience()
	case "exp":
		c.Expiry = cp.num("exp", 0)
	case "iat":
		c.IssuedAt = cp.num("iat", 1)
	case "nbf":
		c.NotBefore = cp.num("nbf", 2)
	case "kubernetes.io":
		cp.kubernetes()
	case legacyPrefix + "namespace":
		cp.legacy().Namespace = cp.str(legacyPrefix+"namespace", "")
	case legacyPrefix + "secret.name":
		cp.legacy().SecretName = cp.str(legacyPrefix+"secret.name", "")
	case legacyPrefix + "service-account.name":
		cp.legacy().ServiceAccountName = cp.str(legacyPrefix+"service-account.name", "")
	case legacyPrefix + "service-account.uid":
		cp.legacy().ServiceAccountUID = cp.str(legacyPrefix+"service-account.uid", "")
	default:
		cp.r.skip()
	}
}

func (cp *claimParser) audience() {
	r := &cp.r
	c := &cp.t.Claims
	switch r.kind() {
	case nullKind:
		r.skip()
	case stringKind:
		c.Audience = append(cp.t.aud[:0], view(r.str()))
	case arrayKind:
		bad := false
		r.open()
		for n := 0; r.next(']', &n); {
			if r.kind() != stringKind {
				r.skip()
				if !bad {
					cp.problem("claim aud holds a non-string")
					bad = true
				}
				continue
			}
			if c.Audience == nil {
				c.Audience = cp.t.aud[:0]
			}
			c.Audience = append(c.Audience, view(r.str()))
		}
	default:
		r.skip()
		cp.problem("claim aud is neither a string nor a list")
	}
}

func (cp *claimParser) legacy() *LegacyClaims {
	c := &cp.t.Claims
	if c.Legacy == nil {
		c.Legacy = &LegacyClaims{}
	}
	return c.Legacy
}

func (cp *claimParser) kubernetes() {
	r := &cp.r
	switch r.kind() {
	case objectKind:
	case nullKind:
		r.skip()
		return
	default:
		r.skip()
		cp.problem("claim kubernetes.io is not an object")
		return
	}
	t := cp.t
	kc := &t.kube
	var seen members
	r.open()
	for n := 0; r.next('}', &n); {
		name := r.key()
		if seen.repeated(name) {
			cp.problem("claim kubernetes.io has member %q twice", clip(string(name)))
		}
		switch string(name) {
		case "namespace":
			kc.Namespace = cp.str("kubernetes.io.namespace", "")
		case "serviceaccount":
			cp.ref("kubernetes.io.serviceaccount", &kc.ServiceAccount)
		case "pod":
			if cp.ref("kubernetes.io.pod", &t.refs[0]) {
				kc.Pod = &t.refs[0]
			}
		case "secret":
			if cp.ref("kubernetes.io.secret", &t.refs[1]) {
				kc.Secret = &t.refs[1]
			}
		case "node":
			if cp.ref("kubernetes.io.node", &t.refs[2]) {
				kc.Node = &t.refs[2]
			}
		case "warnafter":
			kc.WarnAfter = cp.num("kubernetes.io.warnafter", 3)
		default:
			r.skip()
		}
	}
	t.Claims.Kubernetes = kc
}
