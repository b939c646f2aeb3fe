// Package krew_test checks the repository's krew manifests against krew's
// rules and simulates `kubectl krew install` for linux/amd64, from the dist
// archives when `make dist` ran, or from an archive built the same way here.
package krew_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bound-token/kubectl-bound-token/pkg/krew"
)

var repo = filepath.Join("..", "..")

func archiveName(tag string, p krew.OSArch) string {
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kubectl-bound-token_%s_%s_%s%s", tag, p.OS, p.Arch, ext)
}

func readFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{repo}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTemplateRendersToAValidManifest(t *testing.T) {
	sums := map[string]string{}
	for _, p := range krew.Released {
		sums[archiveName("v9.8.7", p)] = strings.Repeat("0", 64)
	}
	out, err := krew.Render(readFile(t, "krew-manifest.yaml"), "v9.8.7", sums)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krew.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if errs := krew.Validate(m, krew.Released); len(errs) > 0 {
		t.Fatalf("krew-manifest.yaml renders to an invalid manifest: %v", errs)
	}
	if m.Spec.Version != "v9.8.7" || !strings.Contains(m.Spec.Caveats, "tokenreviews") {
		t.Fatalf("version %q, caveats %q", m.Spec.Version, m.Spec.Caveats)
	}
}

func TestIndexManifestIsValidAndMatchesDist(t *testing.T) {
	b := readFile(t, "plugins", "bound-token.yaml")
	m, err := krew.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if errs := krew.Validate(m, krew.Released); len(errs) > 0 {
		t.Fatalf("plugins/bound-token.yaml: %v", errs)
	}
	meta, err := os.ReadFile(filepath.Join(repo, "dist", "metadata.json"))
	if err != nil {
		t.Log("no dist/ (make dist): sha256 values not compared with archives")
		return
	}
	var md struct{ Tag string }
	if err := json.Unmarshal(meta, &md); err != nil {
		t.Fatal(err)
	}
	if md.Tag != m.Spec.Version {
		t.Logf("dist/ holds %s, plugins/bound-token.yaml %s: sha256 values not compared (make manifest renders it for dist)", md.Tag, m.Spec.Version)
		return
	}
	for _, p := range m.Spec.Platforms {
		name := filepath.Base(p.URI)
		data, err := os.ReadFile(filepath.Join(repo, "dist", name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != p.Sha256 {
			t.Errorf("%s: manifest sha256 %s, archive %s", name, p.Sha256, got)
		}
	}
}

// TestSimulatedKrewInstall does what krew does on linux/amd64: select the
// platform, download (from a local file), check sha256, extract files, find
// bin, run it.
func TestSimulatedKrewInstall(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Fatalf("the install simulation runs the linux/amd64 binary; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	target := krew.OSArch{OS: "linux", Arch: "amd64"}
	tag := "v0.0.0-test"
	var archive string
	if meta, err := os.ReadFile(filepath.Join(repo, "dist", "metadata.json")); err == nil {
		var md struct{ Tag string }
		_ = json.Unmarshal(meta, &md)
		tag = md.Tag
		archive = filepath.Join(repo, "dist", archiveName(tag, target))
	} else {
		archive = buildArchive(t, tag)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	sums := map[string]string{}
	for _, p := range krew.Released {
		sums[archiveName(tag, p)] = strings.Repeat("0", 64)
	}
	sums[archiveName(tag, target)] = hex.EncodeToString(sum[:])
	out, err := krew.Render(readFile(t, "krew-manifest.yaml"), tag, sums)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krew.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	// The release URL is checked, then served from a local file URL, as a
	// mirror would serve it.
	var fetched string
	for i := range m.Spec.Platforms {
		if m.Spec.Platforms[i].Selector.MatchLabels["os"] == "linux" && m.Spec.Platforms[i].Selector.MatchLabels["arch"] == "amd64" {
			fetched = m.Spec.Platforms[i].URI
			abs, _ := filepath.Abs(archive)
			m.Spec.Platforms[i].URI = (&url.URL{Scheme: "file", Path: abs}).String()
		}
	}
	fetch := func(uri string) ([]byte, error) {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "file" {
			return nil, fmt.Errorf("not a file URL: %s", uri)
		}
		return os.ReadFile(u.Path)
	}
	dest := t.TempDir()
	bin, err := krew.Install(m, target, fetch, dest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(fetched, "/"+tag+"/"+archiveName(tag, target)) {
		t.Errorf("fetched %s", fetched)
	}
	for _, f := range []string{"LICENSE", "kubectl_complete-bound_token"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("%s not installed: %v", f, err)
		}
	}
	cmd := exec.Command(bin, "version", "-o", "json")
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("installed plugin: %v", err)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(outb, &v); err != nil || v.Version == "" {
		t.Fatalf("version output %q (%v)", outb, err)
	}
	// kubectl runs the completion helper; it must reach cobra's __complete.
	path := dest + string(os.PathListSeparator) + os.Getenv("PATH")
	c := exec.Command(filepath.Join(dest, "kubectl_complete-bound_token"), "")
	c.Env = append(os.Environ(), "PATH="+path)
	comp, err := c.Output()
	if err != nil || !strings.Contains(string(comp), "create") || !strings.Contains(string(comp), "verify") {
		t.Fatalf("completion helper: %v %q", err, comp)
	}
}

// buildArchive packs what .goreleaser.yaml packs for linux/amd64.
func buildArchive(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubectl-bound_token")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/bound-token/kubectl-bound-token/pkg/version.Version="+tag, "-o", bin, "./cmd/kubectl-bound_token")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, src := range map[string]string{
		"kubectl-bound_token":          bin,
		"LICENSE":                      filepath.Join(repo, "LICENSE"),
		"kubectl_complete-bound_token": filepath.Join(repo, "hack", "kubectl_complete-bound_token"),
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(src)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	path := filepath.Join(dir, archiveName(tag, krew.OSArch{OS: "linux", Arch: "amd64"}))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
