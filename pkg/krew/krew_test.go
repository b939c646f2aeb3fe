package krew

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tmpl = `spec:
  version: {{ .TagName }}
  platforms:
  - {{addURIAndSha "https://example.com/{{ .TagName }}/p_{{ .TagName }}_linux_amd64.tar.gz" .TagName }}
  - {{addURIAndSha "https://example.com/{{ .TagName }}/p_{{ .TagName }}_darwin_arm64.tar.gz" .TagName }}
`

func TestRenderFillsTagURIAndQuotedSha(t *testing.T) {
	sums := map[string]string{
		"p_v1.2.3_linux_amd64.tar.gz":  strings.Repeat("1", 64),
		"p_v1.2.3_darwin_arm64.tar.gz": strings.Repeat("a", 64),
	}
	out, err := Render([]byte(tmpl), "v1.2.3", func(n string) (string, bool) { s, ok := sums[n]; return s, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := `spec:
  version: v1.2.3
  platforms:
  - uri: https://example.com/v1.2.3/p_v1.2.3_linux_amd64.tar.gz
    sha256: "` + strings.Repeat("1", 64) + `"
  - uri: https://example.com/v1.2.3/p_v1.2.3_darwin_arm64.tar.gz
    sha256: "` + strings.Repeat("a", 64) + `"
`
	if string(out) != want {
		t.Fatalf("rendered:\n%s\nwant:\n%s", out, want)
	}
}

func TestRenderRefusesAnArchiveWithoutChecksum(t *testing.T) {
	only := func(n string) (string, bool) { return "x", n == "p_v1.2.3_linux_amd64.tar.gz" }
	_, err := Render([]byte(tmpl), "v1.2.3", only)
	if err == nil || !strings.Contains(err.Error(), "no checksum for p_v1.2.3_darwin_arm64.tar.gz") || strings.Contains(err.Error(), "linux") {
		t.Fatalf("err = %v, want the one archive without a checksum named", err)
	}
}

func TestReadDist(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(`{"project_name":"x","tag":"v0.1.0","version":"0.1.1-snapshot"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte(strings.Repeat("b", 64)+"  p_v0.1.0_linux_amd64.tar.gz\n"), 0o644)
	d, err := ReadDist(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Tag != "v0.1.0" || d.Version != "0.1.1-snapshot" || d.Sums["p_v0.1.0_linux_amd64.tar.gz"] != strings.Repeat("b", 64) || len(d.Sums) != 1 {
		t.Fatalf("%+v", d)
	}
	os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte("just-one-field\n"), 0o644)
	if _, err := ReadDist(dir); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("malformed checksums.txt: %v", err)
	}
}
