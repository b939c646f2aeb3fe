// Package bench holds the benchmarks of `make bench` that need the plugin
// binary, kubectl or a control plane. Like every benchmark `make bench`
// collects (bench/rows.txt), each reports ours-<unit> and alt-<unit> metrics:
// the plugin and what a user would run instead, both measured in every
// iteration so a neighbour's load hits both alike.
//
// The control plane starts only when benchmarks run: this package has no
// tests, so a plain `go test ./...` costs nothing here.
package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

var cluster *framework.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	framework.Main(m, framework.Options{Name: fmt.Sprintf("bench-%d", os.Getpid())}, func(c *framework.Cluster) { cluster = c })
}

var (
	kubectlOnce sync.Once
	kubectlPath string
	kubectlErr  error
)

// binaries builds the plugin as `make build` does into the cluster's
// folder (framework.Cluster.PluginBinary) and finds kubectl in the
// control-plane cache, built with the same flags.
func binaries(b *testing.B) (plugin, kubectl string) {
	b.Helper()
	plugin = cluster.PluginBinary(b)
	kubectlOnce.Do(func() { kubectlPath, kubectlErr = framework.ControlPlaneBinary("kubectl") })
	if kubectlErr != nil {
		b.Fatal(kubectlErr)
	}
	return plugin, kubectlPath
}

// runProc runs a binary and returns its wall time, peak RSS in bytes and
// stdout.
func runProc(b *testing.B, stdin string, name string, args ...string) (time.Duration, int64, string) {
	b.Helper()
	p, err := framework.RunProcess(stdin, name, args...)
	if err != nil {
		b.Fatal(err)
	}
	return p.Took, p.PeakRSS, p.Stdout
}

func fileMB(b *testing.B, path string) float64 {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(st.Size()) / (1 << 20)
}

// pairs is how many times the per-process rows run each side: the
// medians of so many short processes hold still on a shared machine where
// one neighbour's burst can double a single run.
const pairs = 15

// paired runs ours and alt back to back pairs times, alternating which
// goes first so that neither always meets a warmer cache, and reports the
// median wall time and the median peak RSS of each.
func paired(b *testing.B, ours, alt func() (time.Duration, int64)) {
	b.Helper()
	var oursT, altT []time.Duration
	var oursRSS, altRSS []int64
	for b.Loop() {
		for i := 0; i < pairs; i++ {
			var d1, d2 time.Duration
			var r1, r2 int64
			if i%2 == 0 {
				d1, r1 = ours()
				d2, r2 = alt()
			} else {
				d2, r2 = alt()
				d1, r1 = ours()
			}
			oursT, altT = append(oursT, d1), append(altT, d2)
			oursRSS, altRSS = append(oursRSS, r1), append(altRSS, r2)
		}
	}
	b.ReportMetric(float64(median(oursT)), "ours-ns/op")
	b.ReportMetric(float64(median(altT)), "alt-ns/op")
	b.ReportMetric(float64(median(oursRSS))/(1<<20), "ours-peak-RSS-MB")
	b.ReportMetric(float64(median(altRSS))/(1<<20), "alt-peak-RSS-MB")
}

func median[T time.Duration | int64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkStartup: `kubectl bound-token version --client` against `kubectl version
// --client`, the smallest thing each binary can do (package initialisation,
// the command tree, one line out); and their sizes.
func BenchmarkStartup(b *testing.B) {
	plugin, kubectl := binaries(b)
	paired(b, func() (time.Duration, int64) {
		d, rss, _ := runProc(b, "", plugin, "version", "--client")
		return d, rss
	}, func() (time.Duration, int64) {
		d, rss, _ := runProc(b, "", kubectl, "version", "--client")
		return d, rss
	})
	b.ReportMetric(fileMB(b, plugin), "ours-MB")
	b.ReportMetric(fileMB(b, kubectl), "alt-MB")
}

var (
	stepOnce sync.Once
	stepPath string
	stepErr  error
)

// stepBinary builds smallstep's step, pinned in the Makefile, into .tools/
// on first use (`make step`, outside the project's go.mod) and returns its
// path.
func stepBinary(b *testing.B) string {
	b.Helper()
	stepOnce.Do(func() {
		repo, err := framework.RepoRoot()
		if err != nil {
			stepErr = err
			return
		}
		c := exec.Command("make", "--no-print-directory", "-s", "step")
		c.Dir = repo
		var errOut strings.Builder
		c.Stderr = &errOut
		out, err := c.Output()
		if err != nil {
			stepErr = fmt.Errorf("make step: %v\n%s", err, errOut.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		stepPath = lines[len(lines)-1]
	})
	if stepErr != nil {
		b.Fatal(stepErr)
	}
	return stepPath
}

// BenchmarkVerifyProcess: one cluster-issued token verified offline by one
// process, as a script does it, against smallstep's `step crypto jwt
// verify`. Both get the cluster's JWKS file and must check the issuer and
// the audience (step requires them): the same checks, each side's whole
// process.
func BenchmarkVerifyProcess(b *testing.B) {
	plugin, _ := binaries(b)
	step := stepBinary(b)
	fixtures(b)
	tok := batch[0]
	var claims struct {
		Iss string   `json:"iss"`
		Aud []string `json:"aud"`
	}
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Iss == "" || len(claims.Aud) == 0 {
		b.Fatalf("token payload %q: %v", payload, err)
	}
	tokFile := filepath.Join(cluster.Dir, "bench-verify-process.token")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		b.Fatal(err)
	}
	paired(b, func() (time.Duration, int64) {
		d, rss, out := runProc(b, "", plugin, "verify", "--jwks", jwks, "--token-file", tokFile, "--issuer", claims.Iss, "--audience", claims.Aud[0])
		if !strings.HasPrefix(out, "VERIFIED") {
			b.Fatalf("verify printed %.200q", out)
		}
		return d, rss
	}, func() (time.Duration, int64) {
		d, rss, out := runProc(b, tok, step, "crypto", "jwt", "verify", "--jwks", jwks, "--iss", claims.Iss, "--aud", claims.Aud[0])
		if !strings.Contains(out, `"payload"`) {
			b.Fatalf("step printed %.200q", out)
		}
		return d, rss
	})
}

var (
	nsOnce  sync.Once
	nsErr   error
	benchNS string
	batch   []string
	jwks    string
)

// fixtures: one namespace with 200 labelled ServiceAccounts, 1,000 tokens
// of one of them and the cluster's JWKS in a file.
func fixtures(b *testing.B) {
	b.Helper()
	nsOnce.Do(func() {
		ctx := context.Background()
		cs := cluster.Client
		ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}, metav1.CreateOptions{})
		if err != nil {
			nsErr = err
			return
		}
		benchNS = ns.Name
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < 200; i += 16 {
					_, err := cs.CoreV1().ServiceAccounts(benchNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
						Name: fmt.Sprintf("sa-%03d", i), Labels: map[string]string{"bench": "create"}}}, metav1.CreateOptions{})
					if err != nil {
						mu.Lock()
						nsErr = err
						mu.Unlock()
					}
				}
			}(w)
		}
		wg.Wait()
		if nsErr != nil {
			return
		}
		batch = make([]string, 1000)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(batch); i += 16 {
					tr, err := cs.CoreV1().ServiceAccounts(benchNS).CreateToken(ctx, "sa-000", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
					mu.Lock()
					if err != nil {
						nsErr = err
					} else {
						batch[i] = tr.Status.Token
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		if nsErr != nil {
			return
		}
		raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
		if err != nil {
			nsErr = err
			return
		}
		jwks = filepath.Join(cluster.Dir, "bench-jwks.json")
		nsErr = os.WriteFile(jwks, raw, 0o600)
	})
	if nsErr != nil {
		b.Fatal(nsErr)
	}
}

// BenchmarkVerifyBatch: 1,000 tokens through one `verify --batch` against
// one `verify` process per token (what a shell loop does; sampled on 50
// tokens), both offline with the same JWKS file. Per token.
func BenchmarkVerifyBatch(b *testing.B) {
	plugin, _ := binaries(b)
	fixtures(b)
	const sample = 50
	tokFile := filepath.Join(cluster.Dir, "bench-one.token")
	var ours, alt time.Duration
	var nOurs, nAlt int
	for b.Loop() {
		d, _, out := runProc(b, strings.Join(batch, "\n")+"\n", plugin, "verify", "--batch", "--jwks", jwks)
		if got := strings.Count(out, "\tVERIFIED\t"); got != len(batch) {
			b.Fatalf("verify --batch verified %d of %d", got, len(batch))
		}
		ours, nOurs = ours+d, nOurs+len(batch)
		for i := 0; i < sample; i++ {
			if err := os.WriteFile(tokFile, []byte(batch[i]), 0o600); err != nil {
				b.Fatal(err)
			}
			d, _, _ := runProc(b, "", plugin, "verify", "--jwks", jwks, "--token-file", tokFile)
			alt, nAlt = alt+d, nAlt+1
		}
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(nOurs), "ours-ns/op")
	b.ReportMetric(float64(alt.Nanoseconds())/float64(nAlt), "alt-ns/op")
	b.ReportMetric(float64(nOurs)/ours.Seconds(), "ours-tokens/s")
	b.ReportMetric(float64(nAlt)/alt.Seconds(), "alt-tokens/s")
}

// BenchmarkCreate200: tokens for 200 ServiceAccounts, `create -l` (8
// concurrent TokenRequests) against a loop of `kubectl create token`, one
// process per ServiceAccount, as a shell loop runs it.
func BenchmarkCreate200(b *testing.B) {
	plugin, kubectl := binaries(b)
	fixtures(b)
	var ours, alt time.Duration
	var oursRSS, altRSS int64
	n := 0
	for b.Loop() {
		d, rss, out := runProc(b, "", plugin, "--kubeconfig", cluster.Kubeconfig, "create", "-l", "bench=create", "-n", benchNS)
		if got := strings.Count(out, "\n"); got != 200 {
			b.Fatalf("create printed %d tokens, want 200", got)
		}
		ours, oursRSS = ours+d, max(oursRSS, rss)
		start := time.Now()
		for i := 0; i < 200; i++ {
			_, rss, out := runProc(b, "", kubectl, "--kubeconfig", cluster.Kubeconfig, "create", "token", fmt.Sprintf("sa-%03d", i), "-n", benchNS)
			if !strings.HasPrefix(out, "eyJ") {
				b.Fatalf("kubectl create token printed %.20q", out)
			}
			altRSS = max(altRSS, rss)
		}
		alt += time.Since(start)
		n++
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(n), "ours-ns/op")
	b.ReportMetric(float64(alt.Nanoseconds())/float64(n), "alt-ns/op")
	b.ReportMetric(float64(oursRSS)/(1<<20), "ours-peak-RSS-MB")
	b.ReportMetric(float64(altRSS)/(1<<20), "alt-peak-RSS-MB")
}
