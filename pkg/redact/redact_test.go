package redact

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

const tok = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkFCQyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6c2EifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl"

func keyAndCert(t *testing.T) (keyPEM, certPEM string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kb, _ := x509.MarshalECPrivateKey(k)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestStringRemovesCredentialsAndKeepsTheRest(t *testing.T) {
	key, cert := keyAndCert(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	jsonKey, _ := json.Marshal(key) // newlines escaped, as in a JSON body
	for _, tc := range []struct {
		name, in string
		gone     []string // must not survive
		kept     []string // must survive
	}{
		{"bare token", "Authorization token " + tok + " end", []string{tok, "c2lnbmF0dXJl"}, []string{"Authorization token ", " end"}},
		{"TokenRequest JSON", `{"kind":"TokenRequest","status":{"token":"` + tok + `","expirationTimestamp":"2030-01-01T00:00:00Z"}}`,
			[]string{"c2lnbmF0dXJl"}, []string{`"expirationTimestamp":"2030-01-01T00:00:00Z"`}},
		{"token cut by truncation", `{"status":{"token":"` + tok[:60] + ` [truncated 976 chars]`, []string{tok[40:60]}, []string{"[truncated 976 chars]"}},
		{"legacy Secret JSON", `{"kind":"Secret","metadata":{"name":"s"},"data":{"ca.crt":"` + b64(cert) + `","namespace":"bnM=","token":"` + b64(tok) + `","password":"aHVudGVyMg=="},"type":"kubernetes.io/service-account-token"}`,
			[]string{b64(tok)[:40], "aHVudGVyMg==", "bnM="}, []string{`"name":"s"`, `"type":"kubernetes.io/service-account-token"`, `"password":"` + Mark}},
		{"Secret list cut short", `{"kind":"SecretList","items":[{"metadata":{"name":"a"},"data":{"x":"c2VjcmV0` + ` [truncated 9 chars]`, []string{"c2VjcmV0"}, []string{`"name":"a"`}},
		{"ConfigMap data stays", `{"kind":"ConfigMap","data":{"color":"blue"}}`, nil, []string{`"color":"blue"`}},
		{"PEM key", "key:\n" + key + "after", []string{key[40:80]}, []string{"after"}},
		{"PEM key in JSON", `{"sa.key":` + string(jsonKey) + `}`, []string{key[40:80]}, []string{`{"sa.key":`}},
		{"base64 PEM key", `{"kind":"ConfigMap","binaryData":{"k":"` + b64(key) + `"}}`, []string{b64(key)[:60]}, []string{`"k":"`}},
		{"certificates stay", cert + b64(cert), nil, []string{cert, b64(cert)}},
	} {
		got := String(tc.in)
		for _, g := range tc.gone {
			if strings.Contains(got, g) {
				t.Errorf("%s: %q survived:\n%s", tc.name, g, got)
			}
		}
		for _, k := range tc.kept {
			if !strings.Contains(got, k) {
				t.Errorf("%s: %q was lost:\n%s", tc.name, k, got)
			}
		}
	}
}

// client-go hex-dumps protobuf bodies; the token is there byte by byte.
func TestHexDumpsOfProtobufBodies(t *testing.T) {
	withToken := append([]byte("k8s\x00\x0a\x28\x0a\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x1a\x02"), []byte(tok)...)
	dump := hex.Dump(withToken)
	got := String(dump)
	if strings.Contains(got, "65 79 4a") || strings.Contains(got, "eyJ") || !strings.Contains(got, Mark) {
		t.Errorf("token bytes survived in the dump:\n%s", got)
	}
	// Cut mid-line, as client-go's truncation does.
	cut := dump[:len(dump)-37] + " [truncated 37 chars]"
	if got := String(cut); !strings.HasPrefix(got, Mark) {
		t.Errorf("a truncated dump with a token survived:\n%s", got)
	}
	secret := hex.Dump([]byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x10\x0a\x01p\x12\x0bhunter2hunt"))
	if got := String(secret); strings.Contains(got, "hunter2") || !strings.HasPrefix(got, Mark) {
		t.Errorf("a Secret's protobuf body survived:\n%s", got)
	}
	plain := hex.Dump([]byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x0eServiceAccount\x12\x02sa"))
	if got := String(plain); got != plain {
		t.Errorf("a harmless dump changed:\n%s", got)
	}
}

// The filter is what klog applies to every line, whichever call wrote it.
func TestKlogFilterRedactsEveryPath(t *testing.T) {
	var buf bytes.Buffer
	klog.SetLogFilter(Filter{})
	defer klog.SetLogFilter(nil)
	klog.LogToStderr(false)
	klog.SetOutput(&buf)
	defer klog.LogToStderr(true)
	klog.Info("token ", tok)
	klog.Infof("token %s", tok)
	klog.InfoS("Response Body", "body", `{"status":{"token":"`+tok+`"}}`)
	klog.Background().Info("Request Body", "body", []byte(`{"spec":{"token":"`+tok+`"}}`))
	klog.ErrorS(nil, "failed", "detail", errorString("bad token "+tok))
	klog.Flush()
	out := buf.String()
	if strings.Contains(out, "c2lnbmF0dXJl") || strings.Count(out, Mark) < 5 {
		t.Errorf("klog output:\n%s", out)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
