// Package krew_test puts the plugin through the real krew (sigs.k8s.io/krew,
// pinned in the Makefile): krew-index's validate-krew-manifest checks the
// manifests, and `kubectl krew` installs the release archive goreleaser
// builds from .goreleaser.yaml for this machine, then uninstalls it.
//
// `make krew` builds the tools and passes their paths: KREW (cmd/krew),
// VALIDATE_KREW_MANIFEST, GORELEASER and KUBECTL.
package krew_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/bound-token/kubectl-bound-token/pkg/krew"
)

// tool is the path of one tool the Makefile built.
func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run this test with `make krew` (it builds krew, validate-krew-manifest, goreleaser and kubectl)", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return p
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// run runs a command with env (nil: the test's own environment) and returns
// its stdout and stderr together; it fails the test unless the exit status
// is wantOK.
func run(t *testing.T, dir string, env []string, wantOK bool, name string, args ...string) string {
	t.Helper()
	stdout, stderr := runSplit(t, dir, env, wantOK, name, args...)
	return stdout + stderr
}

func runSplit(t *testing.T, dir string, env []string, wantOK bool, name string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err == nil) != wantOK {
		t.Fatalf("%s %s: err=%v (want success: %v)\n%s%s", filepath.Base(name), strings.Join(args, " "), err, wantOK, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// validate runs krew-index's checker, as krew-index's CI does, minus the
// install (-skip-install: it would download every platform's uri).
func validate(t *testing.T, manifest string, wantOK bool) string {
	t.Helper()
	return run(t, "", nil, wantOK, tool(t, "VALIDATE_KREW_MANIFEST"), "-skip-install", "-manifest", manifest)
}

func TestIndexManifestPassesKrewValidation(t *testing.T) {
	out := validate(t, filepath.Join(repoRoot(t), "plugins", "bound-token.yaml"), true)
	// The steps of validateManifestFile (cmd/validate-krew-manifest/main.go).
	for _, step := range []string{"structural validation OK", "all spec.platform[] items are used", "no overlapping spec.platform[].selector"} {
		if !strings.Contains(out, step) {
			t.Errorf("validate-krew-manifest did not report %q:\n%s", step, out)
		}
	}
}

// TestIndexManifestIsTheTemplateRendered: plugins/bound-token.yaml (what
// `kubectl krew install bound-token/bound-token` reads) and the template
// krew-release-bot sends to krew-index differ only by version, uri and
// sha256, so a description or caveat is never changed in one alone.
func TestIndexManifestIsTheTemplateRendered(t *testing.T) {
	root := repoRoot(t)
	index, err := os.ReadFile(filepath.Join(root, "plugins", "bound-token.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Spec struct {
			Version   string `json:"version"`
			Platforms []struct {
				URI    string `json:"uri"`
				Sha256 string `json:"sha256"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(index, &m); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, p := range m.Spec.Platforms {
		sums[filepath.Base(p.URI)] = p.Sha256
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "krew-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := krew.Render(tmpl, m.Spec.Version, func(n string) (string, bool) { s, ok := sums[n]; return s, ok })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(index, want) {
		t.Fatalf("plugins/bound-token.yaml is not krew-manifest.yaml rendered for %s (make dist manifest):\n%s", m.Spec.Version, lineDiff(string(want), string(index)))
	}
}

// lineDiff names the first line where got departs from want.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d: template %q, index %q", i+1, wl, gl)
		}
	}
	return "same lines"
}

// TestReleaseArchiveInstallsWithKrew is a user's path through krew, with the
// archive a release would publish for this platform.
func TestReleaseArchiveInstallsWithKrew(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	archive, dist := goreleaserHostArchive(t, root, filepath.Join(tmp, "goreleaser"))

	// The manifest krew-release-bot would render from krew-manifest.yaml; the
	// other platforms' archives are not built here, so their sha256 values
	// are placeholders (validate-krew-manifest -skip-install only checks their
	// form, and krew installs only the entry matching this platform).
	tmpl, err := os.ReadFile(filepath.Join(root, "krew-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	named := false
	b, err := krew.Render(tmpl, dist.Tag, func(name string) (string, bool) {
		if s, ok := dist.Sums[name]; ok {
			named = named || name == filepath.Base(archive)
			return s, true
		}
		return strings.Repeat("0", 64), true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !named {
		t.Fatalf("krew-manifest.yaml names no %s, the archive .goreleaser.yaml builds for %s/%s", filepath.Base(archive), runtime.GOOS, runtime.GOARCH)
	}
	// validate-krew-manifest takes the plugin name from the file name.
	manifest := filepath.Join(tmp, "rendered", "bound-token.yaml")
	if err := os.MkdirAll(filepath.Dir(manifest), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	validate(t, manifest, true)

	// The validator refuses what krew would refuse: a sha256 that is not
	// lowercase hex (validatePlatform, internal/index/validation/validate.go).
	bad := filepath.Join(tmp, "bad", "bound-token.yaml")
	sum := dist.Sums[filepath.Base(archive)]
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(b, []byte(sum), []byte(strings.ToUpper(sum)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := validate(t, bad, false); !strings.Contains(out, "`sha256` value") {
		t.Errorf("an uppercase sha256 was refused for another reason:\n%s", out)
	}

	k := newKrewEnv(t, tmp)

	// A custom index, as the README tells users: `kubectl krew index add`
	// clones a git repository with plugins/*.yaml at its root
	// (indexoperations.AddIndex -> gitutil.EnsureCloned). Without an index
	// krew refuses `uninstall` (checkIndex, cmd/krew/cmd/root.go).
	src := localClone(t, root, filepath.Join(tmp, "index-src"))
	k.run(t, true, "krew", "index", "add", "bound-token", src)
	// `kubectl krew search` cuts shortDescription at 50 characters
	// (limitString in cmd/krew/cmd/search.go): it must show it whole.
	var index struct {
		Spec struct {
			ShortDescription string `json:"shortDescription"`
		} `json:"spec"`
	}
	ib, err := os.ReadFile(filepath.Join(root, "plugins", "bound-token.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ib, &index); err != nil {
		t.Fatal(err)
	}
	if out := k.run(t, true, "krew", "search", "bound-token"); !strings.Contains(out, "bound-token/bound-token") || !strings.Contains(out, index.Spec.ShortDescription) {
		t.Errorf("kubectl krew search does not show bound-token/bound-token with its whole shortDescription %q:\n%s", index.Spec.ShortDescription, out)
	}

	out := k.run(t, true, "krew", "install", "--manifest="+manifest, "--archive="+archive)
	if !strings.Contains(out, "Installed plugin: bound-token") || !strings.Contains(out, "Caveats:") {
		t.Errorf("install output:\n%s", out)
	}
	// What validate-krew-manifest checks after an install
	// (validateLicenseFileExists, cmd/validate-krew-manifest/main.go).
	store := filepath.Join(k.root, "store", "bound-token", dist.Tag)
	for _, f := range []string{"LICENSE", "kubectl-bound_token", "kubectl_complete-bound_token"} {
		if _, err := os.Stat(filepath.Join(store, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}

	// kubectl finds the plugin through PATH, in krew's bin folder.
	link := filepath.Join(k.root, "bin", "kubectl-bound_token")
	if out := k.run(t, true, "plugin", "list"); !strings.Contains(out, link) {
		t.Errorf("kubectl plugin list does not list %s:\n%s", link, out)
	}
	var v struct{ Version string }
	vout, _ := runSplit(t, "", k.env(), true, k.kubectl(), "bound-token", "version", "--client", "-o", "json")
	if err := json.Unmarshal([]byte(vout), &v); err != nil || v.Version != "v"+dist.Version {
		t.Errorf("kubectl bound-token version: %q (%v), want the goreleaser build v%s", vout, err, dist.Version)
	}
	if out := k.run(t, true, "bound-token", "migrate", "--help"); !strings.Contains(out, "kubectl bound-token migrate") || !strings.Contains(out, "--apply") {
		t.Errorf("kubectl bound-token migrate --help:\n%s", out)
	}

	// The caveats' completion recipe, run as written: the folder its shell
	// line prints, on PATH, gives kubectl (>= 1.26) the plugin's
	// kubectl_complete-bound_token.
	var rendered struct {
		Spec struct {
			Caveats string `json:"caveats"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &rendered); err != nil {
		t.Fatal(err)
	}
	recipe := ""
	for _, line := range strings.Split(rendered.Spec.Caveats, "\n") {
		if strings.Contains(line, "readlink") {
			recipe = strings.TrimSpace(line)
		}
	}
	if recipe == "" {
		t.Fatal("the caveats have no completion recipe (a readlink line)")
	}
	folder, _ := runSplit(t, "", k.env(), true, "sh", "-c", recipe)
	folder = strings.TrimSpace(folder)
	if folder != store {
		t.Errorf("the caveats' recipe %s prints %q, want the installed folder %s", recipe, folder, store)
	}
	withHelper := k.env(folder)
	if out := run(t, "", withHelper, true, k.kubectl(), "__complete", "bound-token", ""); !strings.Contains(out, "migrate") || !strings.Contains(out, "verify") {
		t.Errorf("kubectl __complete bound-token through the caveat's folder:\n%s", out)
	}

	k.run(t, true, "krew", "uninstall", "bound-token")
	for _, d := range []string{"bin", "receipts", "store"} {
		entries, err := os.ReadDir(filepath.Join(k.root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("left behind after uninstall: %s", filepath.Join(k.root, d, e.Name()))
		}
	}
	if entries, _ := os.ReadDir(k.tmp); len(entries) > 0 {
		t.Errorf("krew left %d entries in TMPDIR, e.g. %s", len(entries), entries[0].Name())
	}
	k.run(t, false, "bound-token", "version", "--client")
}

// goreleaserHostArchive runs `goreleaser release --snapshot` with the
// project's .goreleaser.yaml narrowed to this machine's GOOS/GOARCH and a
// dist folder under dir. goreleaser v2.16.0 has --single-target only for
// `build`, which makes no archives (cmd/build.go, cmd/release.go).
func goreleaserHostArchive(t *testing.T, root, dir string) (string, *krew.Dist) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	builds, _ := cfg["builds"].([]any)
	if len(builds) == 0 {
		t.Fatal(".goreleaser.yaml has no builds")
	}
	for _, b := range builds {
		m := b.(map[string]any)
		m["goos"] = []string{runtime.GOOS}
		m["goarch"] = []string{runtime.GOARCH}
		delete(m, "targets")
		delete(m, "ignore")
	}
	cfg["dist"] = filepath.Join(dir, "dist")
	override, err := json.Marshal(cfg) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "goreleaser.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, override, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run(t, root, nil, true, tool(t, "GORELEASER"), "release", "--snapshot", "--clean", "--config", cfgFile)
	t.Logf("goreleaser release --snapshot for %s/%s: %s", runtime.GOOS, runtime.GOARCH, time.Since(start).Round(time.Second))

	d, err := krew.ReadDist(filepath.Join(dir, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	ab, err := os.ReadFile(filepath.Join(dir, "dist", "artifacts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var artifacts []struct{ Name, Path, Goos, Goarch, Type string }
	if err := json.Unmarshal(ab, &artifacts); err != nil {
		t.Fatal(err)
	}
	var archives []string
	for _, a := range artifacts {
		if a.Type == "Archive" && a.Goos == runtime.GOOS && a.Goarch == runtime.GOARCH {
			archives = append(archives, a.Path)
		}
	}
	if len(archives) != 1 {
		t.Fatalf("goreleaser made %d archives for %s/%s: %v", len(archives), runtime.GOOS, runtime.GOARCH, archives)
	}
	archive := archives[0]
	if !filepath.IsAbs(archive) {
		archive = filepath.Join(root, archive)
	}
	return archive, d
}

// localClone clones the repository and commits the working tree's
// plugins/bound-token.yaml into the clone when it differs from HEAD's, so
// the index holds the manifest under test.
func localClone(t *testing.T, root, dir string) string {
	t.Helper()
	run(t, "", nil, true, "git", "clone", "--quiet", root, dir)
	want, err := os.ReadFile(filepath.Join(root, "plugins", "bound-token.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "plugins", "bound-token.yaml")
	if have, _ := os.ReadFile(dst); !bytes.Equal(have, want) {
		if err := os.WriteFile(dst, want, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, dir, nil, true, "git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "--quiet", "-am", "plugins: working tree")
	}
	return dir
}

// krewEnv is a user with krew: a KREW_ROOT of its own, `kubectl-krew` and
// kubectl on PATH, krew's bin folder first.
type krewEnv struct {
	root, home, tmp, bin, git string
}

func newKrewEnv(t *testing.T, dir string) *krewEnv {
	t.Helper()
	k := &krewEnv{root: filepath.Join(dir, "krew-root"), home: filepath.Join(dir, "home"), tmp: filepath.Join(dir, "tmp"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{k.home, k.tmp, k.bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// krew runs git (internal/gitutil); .ci/run installs it.
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed for krew's indexes:", err)
	}
	k.git = filepath.Dir(git)
	for name, env := range map[string]string{"kubectl-krew": "KREW", "kubectl": "KUBECTL"} {
		if err := os.Symlink(tool(t, env), filepath.Join(k.bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func (k *krewEnv) env(extraPath ...string) []string {
	path := append([]string{filepath.Join(k.root, "bin"), k.bin, k.git}, extraPath...)
	return []string{
		"PATH=" + strings.Join(path, string(os.PathListSeparator)),
		"HOME=" + k.home,
		"KREW_ROOT=" + k.root,
		"TMPDIR=" + k.tmp,
		"KUBECONFIG=" + filepath.Join(k.home, "no-kubeconfig"),
		// No call to GitHub for krew's newest release (preRun, cmd/krew/cmd/root.go).
		"KREW_NO_UPGRADE_CHECK=1",
	}
}

func (k *krewEnv) kubectl() string { return filepath.Join(k.bin, "kubectl") }

// run runs kubectl with args.
func (k *krewEnv) run(t *testing.T, wantOK bool, args ...string) string {
	t.Helper()
	return run(t, "", k.env(), wantOK, k.kubectl(), args...)
}
