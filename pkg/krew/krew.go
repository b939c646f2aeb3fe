// Package krew renders the plugin's krew manifest from the template
// krew-manifest.yaml and a goreleaser dist folder, as krew-release-bot
// renders it for krew-index.
//
// It does not check manifests: krew's own validate-krew-manifest (built by
// `make tools` from sigs.k8s.io/krew) is the one authority for krew's rules,
// and test/krew runs it, and the real `kubectl krew`, on what this renders.
//
// It must not import any other package of this module.
package krew

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
)

// Render fills the krew-release-bot template: {{ .TagName }} and
// {{addURIAndSha "URL" .TagName}}. sum gives the sha256 of an archive by its
// file name (the URL's last element); a name it does not know is an error.
func Render(tmpl []byte, tag string, sum func(archive string) (string, bool)) ([]byte, error) {
	var missing []string
	funcs := template.FuncMap{
		"addURIAndSha": func(url, tag string) string {
			url = strings.ReplaceAll(url, "{{ .TagName }}", tag)
			s, ok := sum(path.Base(url))
			if !ok {
				missing = append(missing, path.Base(url))
			}
			// Quoted: an all-digit or "1e5..."-like hash would otherwise
			// load as a YAML number.
			return fmt.Sprintf("uri: %s\n    sha256: %q", url, s)
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

// Dist is what a goreleaser run left in its dist folder that the manifest
// needs.
type Dist struct {
	Dir string
	// Tag is the git tag the archives are named after ({{ .Tag }}).
	Tag string
	// Version is {{ .Version }}, which the binaries report as v+Version.
	Version string
	// Sums maps archive file names to their sha256.
	Sums map[string]string
}

// ReadDist reads metadata.json and checksums.txt of a goreleaser dist folder.
func ReadDist(dir string) (*Dist, error) {
	meta, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		return nil, err
	}
	var md struct {
		Tag     string `json:"tag"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(meta, &md); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "metadata.json"), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "checksums.txt"))
	if err != nil {
		return nil, err
	}
	sums, err := ParseChecksums(b)
	if err != nil {
		return nil, err
	}
	return &Dist{Dir: dir, Tag: md.Tag, Version: md.Version, Sums: sums}, nil
}

// RenderDist renders the template for every archive of d.
func RenderDist(tmpl []byte, d *Dist) ([]byte, error) {
	return Render(tmpl, d.Tag, func(name string) (string, bool) {
		s, ok := d.Sums[name]
		return s, ok
	})
}
