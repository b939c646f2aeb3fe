// render-manifest writes plugins/bound-token.yaml from krew-manifest.yaml and
// a goreleaser dist folder (make manifest), so this repository is a custom
// krew index for the version in dist.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bound-token/kubectl-bound-token/pkg/krew"
)

func main() {
	if err := run("krew-manifest.yaml", "dist", filepath.Join("plugins", "bound-token.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, "render-manifest:", err)
		os.Exit(1)
	}
}

func run(tmplPath, dist, out string) error {
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		return err
	}
	meta, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		return fmt.Errorf("%w (run make dist first)", err)
	}
	var md struct {
		Tag string `json:"tag"`
	}
	if err := json.Unmarshal(meta, &md); err != nil {
		return err
	}
	sumsFile, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		return err
	}
	sums, err := krew.ParseChecksums(sumsFile)
	if err != nil {
		return err
	}
	b, err := krew.Render(tmpl, md.Tag, sums)
	if err != nil {
		return err
	}
	m, err := krew.Parse(b)
	if err != nil {
		return err
	}
	if errs := krew.Validate(m, krew.Released); len(errs) > 0 {
		return fmt.Errorf("rendered manifest is invalid: %v", errs)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
