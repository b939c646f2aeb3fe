// Package krew renders, checks and installs the plugin's krew manifest the
// way krew and krew-release-bot do, because neither tool can be fetched here
// and a broken manifest only shows up when users install.
package krew

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

const (
	PluginName = "bound-token"
	Binary     = "kubectl-bound_token"
	APIVersion = "krew.googlecontainertools.github.com/v1alpha2"
)

// Manifest is the part of krew's Plugin type that matters here.
type Manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string     `json:"version"`
		Homepage         string     `json:"homepage"`
		ShortDescription string     `json:"shortDescription"`
		Description      string     `json:"description"`
		Caveats          string     `json:"caveats"`
		Platforms        []Platform `json:"platforms"`
	} `json:"spec"`
}

type Platform struct {
	Selector struct {
		MatchLabels      map[string]string `json:"matchLabels"`
		MatchExpressions []any             `json:"matchExpressions,omitempty"`
	} `json:"selector"`
	URI    string `json:"uri"`
	Sha256 string `json:"sha256"`
	Bin    string `json:"bin"`
	Files  []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"files"`
}

// OSArch names one released platform.
type OSArch struct{ OS, Arch string }

func (p OSArch) String() string { return p.OS + "/" + p.Arch }

// Released are the platforms .goreleaser.yaml builds.
var Released = []OSArch{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}, {"windows", "arm64"},
}

// Render fills the krew-release-bot template: {{ .TagName }} and
// {{addURIAndSha "URL" .TagName}}, with sha256 looked up by archive file name.
func Render(tmpl []byte, tag string, sums map[string]string) ([]byte, error) {
	var missing []string
	funcs := template.FuncMap{
		"addURIAndSha": func(url, tag string) string {
			url = strings.ReplaceAll(url, "{{ .TagName }}", tag)
			sum, ok := sums[path.Base(url)]
			if !ok {
				missing = append(missing, path.Base(url))
			}
			// Quoted: an all-digit or "1e5..."-like hash would otherwise
			// load as a YAML number.
			return fmt.Sprintf("uri: %s\n    sha256: %q", url, sum)
		},
	}
	t, err := template.New("krew").Funcs(funcs).Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, fmt.Errorf("parse krew template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]string{"TagName": tag}); err != nil {
		return nil, fmt.Errorf("render krew template: %w", err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no checksum for %s", strings.Join(missing, ", "))
	}
	return b.Bytes(), nil
}

// ParseChecksums reads goreleaser's checksums.txt ("SHA  FILE" lines).
func ParseChecksums(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("checksums line %d: want \"SHA256  FILE\"", i+1)
		}
		out[f[1]] = f[0]
	}
	return out, nil
}

var (
	semverRe = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	shaRe    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Parse reads a manifest, refusing unknown fields as krew does.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return nil, fmt.Errorf("krew manifest: %w", err)
	}
	return &m, nil
}

// Validate applies krew's rules and ours: every released platform is
// selected by exactly one entry.
func Validate(m *Manifest, platforms []OSArch) []string {
	var errs []string
	fail := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if m.APIVersion != APIVersion {
		fail("apiVersion %q, want %q", m.APIVersion, APIVersion)
	}
	if m.Kind != "Plugin" {
		fail("kind %q, want Plugin", m.Kind)
	}
	if m.Metadata.Name != PluginName {
		fail("metadata.name %q, want %q", m.Metadata.Name, PluginName)
	}
	if !semverRe.MatchString(m.Spec.Version) {
		fail("spec.version %q is not semver with a leading v", m.Spec.Version)
	}
	if m.Spec.ShortDescription == "" || len(m.Spec.ShortDescription) > 50 {
		fail("spec.shortDescription must be 1 to 50 characters")
	}
	if !strings.HasPrefix(m.Spec.Homepage, "https://") {
		fail("spec.homepage %q is not https", m.Spec.Homepage)
	}
	covered := map[OSArch]int{}
	for i, p := range m.Spec.Platforms {
		where := fmt.Sprintf("platform %d", i)
		if len(p.Selector.MatchExpressions) > 0 {
			fail("%s: selector uses matchExpressions; only matchLabels os/arch are allowed here", where)
		}
		for k := range p.Selector.MatchLabels {
			if k != "os" && k != "arch" {
				fail("%s: selector key %q; only os and arch are allowed", where, k)
			}
		}
		pa := OSArch{p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]}
		if pa.OS == "" || pa.Arch == "" {
			fail("%s: selector must set both os and arch", where)
		}
		for _, want := range platforms {
			if want == pa {
				covered[pa]++
			}
		}
		if !strings.HasPrefix(p.URI, "https://") {
			fail("%s: uri %q is not https", where, p.URI)
		}
		if !shaRe.MatchString(p.Sha256) {
			fail("%s: sha256 %q is not 64 lowercase hex digits", where, p.Sha256)
		}
		wantBin := Binary
		if pa.OS == "windows" {
			wantBin += ".exe"
		}
		if p.Bin != wantBin {
			fail("%s: bin %q, want %q", where, p.Bin, wantBin)
		}
		hasLicense, hasBin := false, false
		for _, f := range p.Files {
			if f.From == "LICENSE" {
				hasLicense = true
			}
			if f.From == wantBin {
				hasBin = true
			}
		}
		if !hasLicense || !hasBin {
			fail("%s: files must copy %s and LICENSE", where, wantBin)
		}
	}
	for _, want := range platforms {
		switch covered[want] {
		case 0:
			fail("no platform entry selects %s", want)
		case 1:
		default:
			fail("%d platform entries select %s", covered[want], want)
		}
	}
	return errs
}

// Install does what `krew install` does for one platform: pick the entry by
// selector, fetch the archive, check its sha256, extract it, apply files and
// return the path of bin inside dest.
func Install(m *Manifest, target OSArch, fetch func(uri string) ([]byte, error), dest string) (string, error) {
	var p *Platform
	for i := range m.Spec.Platforms {
		l := m.Spec.Platforms[i].Selector.MatchLabels
		if l["os"] == target.OS && l["arch"] == target.Arch {
			p = &m.Spec.Platforms[i]
			break
		}
	}
	if p == nil {
		return "", fmt.Errorf("no platform entry for %s", target)
	}
	data, err := fetch(p.URI)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", p.URI, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != p.Sha256 {
		return "", fmt.Errorf("sha256 of %s is %s, manifest says %s", p.URI, got, p.Sha256)
	}
	stage := filepath.Join(dest, ".extract")
	if err := extract(p.URI, data, stage); err != nil {
		return "", err
	}
	for _, f := range p.Files {
		src := filepath.Join(stage, filepath.FromSlash(f.From))
		dst := filepath.Join(dest, filepath.FromSlash(f.To), filepath.Base(src))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(src, dst); err != nil {
			return "", fmt.Errorf("files: %s: %w", f.From, err)
		}
	}
	bin := filepath.Join(dest, filepath.FromSlash(p.Bin))
	st, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("bin %s not in the installed files", p.Bin)
	}
	if target.OS != "windows" && st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("bin %s is not executable", p.Bin)
	}
	return bin, os.RemoveAll(stage)
}

func extract(uri string, data []byte, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	safe := func(name string) (string, error) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(os.PathSeparator)) {
			return "", fmt.Errorf("archive entry %q escapes the folder", name)
		}
		return p, nil
	}
	if strings.HasSuffix(uri, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return err
		}
		for _, f := range zr.File {
			p, err := safe(f.Name)
			if err != nil {
				return err
			}
			if f.FileInfo().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return err
			}
			err = writeFile(p, rc, f.Mode())
			rc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p, err := safe(h.Name)
		if err != nil {
			return err
		}
		if err := writeFile(p, tr, os.FileMode(h.Mode)); err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
