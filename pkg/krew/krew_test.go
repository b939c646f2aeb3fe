package krew

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		mode := int64(0o644)
		if strings.HasPrefix(name, "kubectl") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func shaHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

const tmpl = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: bound-token
spec:
  version: {{ .TagName }}
  homepage: https://example.com
  shortDescription: test
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: amd64
    {{addURIAndSha "https://example.com/{{ .TagName }}/p_{{ .TagName }}_linux_amd64.tar.gz" .TagName }}
    files:
      - from: kubectl-bound_token
        to: .
      - from: LICENSE
        to: .
    bin: kubectl-bound_token
`

func TestRenderValidateInstall(t *testing.T) {
	archive := tarGz(t, map[string]string{"kubectl-bound_token": "#!/bin/sh\necho hi\n", "LICENSE": "Apache"})
	out, err := Render([]byte(tmpl), "v1.2.3", map[string]string{"p_v1.2.3_linux_amd64.tar.gz": shaHex(archive)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "uri: https://example.com/v1.2.3/p_v1.2.3_linux_amd64.tar.gz\n    sha256: \""+shaHex(archive)+"\"") {
		t.Fatalf("rendered:\n%s", out)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Validate(m, []OSArch{{"linux", "amd64"}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	dest := t.TempDir()
	fetch := func(uri string) ([]byte, error) { return archive, nil }
	bin, err := Install(m, OSArch{"linux", "amd64"}, fetch, dest)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(bin); !strings.Contains(string(b), "echo hi") {
		t.Fatalf("installed bin: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dest, "LICENSE")); err != nil {
		t.Fatal("LICENSE not installed")
	}
	// A tampered archive is refused.
	bad := append([]byte{}, archive...)
	bad[len(bad)-5] ^= 1
	if _, err := Install(m, OSArch{"linux", "amd64"}, func(string) ([]byte, error) { return bad, nil }, t.TempDir()); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("tampered archive: %v", err)
	}
	if _, err := Install(m, OSArch{"darwin", "arm64"}, fetch, t.TempDir()); err == nil {
		t.Fatal("installed for a platform the manifest lacks")
	}
	if _, err := Render([]byte(tmpl), "v1.2.3", nil); err == nil {
		t.Fatal("rendered without a checksum")
	}
}

func TestValidateCatchesKrewRuleBreaks(t *testing.T) {
	good := strings.Replace(tmpl, `{{addURIAndSha "https://example.com/{{ .TagName }}/p_{{ .TagName }}_linux_amd64.tar.gz" .TagName }}`,
		"uri: https://example.com/p.tar.gz\n    sha256: "+strings.Repeat("a", 64), 1)
	good = strings.Replace(good, "{{ .TagName }}", "v1.0.0", 1)
	for name, tc := range map[string]struct {
		from, to string
		want     string
		plats    []OSArch
	}{
		"version without v":  {"version: v1.0.0", "version: 1.0.0", "leading v", nil},
		"uppercase sha":      {strings.Repeat("a", 64), strings.Repeat("A", 64), "lowercase", nil},
		"extra selector key": {"arch: amd64", "arch: amd64\n        distro: debian", `"distro"`, nil},
		"wrong bin":          {"bin: kubectl-bound_token", "bin: bound-token", "bin", nil},
		"wrong name":         {"name: bound-token", "name: boundtoken", "metadata.name", nil},
		"no license":         {"      - from: LICENSE\n        to: .\n", "", "LICENSE", nil},
		"platform missing":   {"", "", "no platform entry selects darwin/arm64", []OSArch{{"linux", "amd64"}, {"darwin", "arm64"}}},
	} {
		src := strings.Replace(good, tc.from, tc.to, 1)
		m, err := Parse([]byte(src))
		if err != nil {
			if strings.Contains(err.Error(), tc.want) {
				continue
			}
			t.Fatalf("%s: %v", name, err)
		}
		plats := tc.plats
		if plats == nil {
			plats = []OSArch{{"linux", "amd64"}}
		}
		errs := Validate(m, plats)
		if !strings.Contains(fmt.Sprint(errs), tc.want) {
			t.Errorf("%s: errors %v do not mention %q", name, errs, tc.want)
		}
	}
	// Two entries for the same platform overlap.
	m, _ := Parse([]byte(good))
	m.Spec.Platforms = append(m.Spec.Platforms, m.Spec.Platforms[0])
	if errs := Validate(m, []OSArch{{"linux", "amd64"}}); !strings.Contains(fmt.Sprint(errs), "2 platform entries select linux/amd64") {
		t.Errorf("overlap not caught: %v", errs)
	}
}
