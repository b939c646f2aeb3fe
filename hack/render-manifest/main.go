// render-manifest writes plugins/bound-token.yaml from krew-manifest.yaml and
// a goreleaser dist folder (make manifest), so this repository is a custom
// krew index for the version in dist. `make manifest` then checks the result
// with krew's own validate-krew-manifest.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bound-token/kubectl-bound-token/pkg/krew"
)

func main() {
	tmpl := flag.String("template", "krew-manifest.yaml", "krew-release-bot template")
	dist := flag.String("dist", "dist", "goreleaser dist folder (metadata.json, checksums.txt)")
	out := flag.String("out", filepath.Join("plugins", "bound-token.yaml"), "manifest to write")
	flag.Parse()
	if err := run(*tmpl, *dist, *out); err != nil {
		fmt.Fprintln(os.Stderr, "render-manifest:", err)
		os.Exit(1)
	}
}

func run(tmplPath, dist, out string) error {
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		return err
	}
	d, err := krew.ReadDist(dist)
	if err != nil {
		return fmt.Errorf("%w (run make dist first)", err)
	}
	b, err := krew.RenderDist(tmpl, d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
