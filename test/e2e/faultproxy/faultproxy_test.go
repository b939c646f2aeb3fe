package faultproxy

import (
	"bufio"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// upstream is a stand-in apiserver: it counts what reaches it and streams
// a line every 20 ms on watches until the client goes away.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		if r.URL.Query().Get("watch") == "true" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "{\"type\":\"ADDED\",\"n\":%d}\n", i); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		if r.URL.Path == "/version" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"major":"1","minor":"34","gitVersion":"v1.34.4"}`)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) restConfig() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: u.srv.Certificate().Raw})
	return &rest.Config{Host: u.srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

func startProxy(t *testing.T, u *upstream, kubeconfig string, cfg Config) *Proxy {
	t.Helper()
	cfg.Logf = t.Logf
	p, err := start(u.restConfig(), kubeconfig, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// client trusts the proxy and never reuses connections, so Go's transport
// cannot silently retry a reset request on a kept-alive connection.
func client(t *testing.T, p *Proxy) *http.Client {
	t.Helper()
	cfg := p.RESTConfig()
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

func TestEachFaultHappensAndIsCounted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		method   string
		wantCode int // 0: a connection reset
		wantHits int64
		check    func(t *testing.T, resp *http.Response, took time.Duration, s Stats)
	}{
		{"429", Config{Rate429: 1, RetryAfter: 2 * time.Second}, "GET", 429, 0, func(t *testing.T, resp *http.Response, _ time.Duration, s Stats) {
			if got := resp.Header.Get("Retry-After"); got != "2" {
				t.Errorf("Retry-After = %q, want 2", got)
			}
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), `"reason":"TooManyRequests"`) || !strings.Contains(string(b), `"retryAfterSeconds":2`) {
				t.Errorf("body is not a TooManyRequests Status: %s", b)
			}
			if s.TooManyRequests != 1 {
				t.Errorf("stats %v", s)
			}
		}},
		{"500", Config{Rate500: 1}, "POST", 500, 0, func(t *testing.T, resp *http.Response, _ time.Duration, s Stats) {
			if resp.Header.Get("Retry-After") != "" {
				t.Error("500 carries Retry-After")
			}
			if s.InternalError != 1 {
				t.Errorf("stats %v", s)
			}
		}},
		{"503", Config{Rate503: 1}, "POST", 503, 0, func(t *testing.T, resp *http.Response, _ time.Duration, s Stats) {
			if resp.Header.Get("Retry-After") != "" {
				t.Error("503 carries Retry-After")
			}
			if s.ServiceUnavailable != 1 {
				t.Errorf("stats %v", s)
			}
		}},
		{"reset before", Config{RateResetBefore: 1}, "POST", 0, 0, func(t *testing.T, _ *http.Response, _ time.Duration, s Stats) {
			if s.ResetBefore != 1 || s.Forwarded != 0 {
				t.Errorf("stats %v", s)
			}
		}},
		{"reset after", Config{RateResetAfter: 1}, "POST", 0, 1, func(t *testing.T, _ *http.Response, _ time.Duration, s Stats) {
			if s.ResetAfter != 1 || s.Forwarded != 1 {
				t.Errorf("stats %v", s)
			}
		}},
		{"slow", Config{RateSlow: 1, SlowDelay: 400 * time.Millisecond}, "GET", 200, 1, func(t *testing.T, _ *http.Response, took time.Duration, s Stats) {
			if took < 400*time.Millisecond {
				t.Errorf("answered in %s, want at least 400ms", took)
			}
			if s.Slow != 1 {
				t.Errorf("stats %v", s)
			}
		}},
		{"none", Config{}, "GET", 200, 1, func(t *testing.T, _ *http.Response, _ time.Duration, s Stats) {
			if s.Faults() != 0 || s.Requests != 1 || s.Forwarded != 1 {
				t.Errorf("stats %v", s)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			p := startProxy(t, u, "", tc.cfg)
			req, _ := http.NewRequest(tc.method, p.URL+"/api/v1/namespaces/a/serviceaccounts/b/token", strings.NewReader(`{}`))
			start := time.Now()
			resp, err := client(t, p).Do(req)
			took := time.Since(start)
			if tc.wantCode == 0 {
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("want a connection reset, got resp=%v err=%v", resp, err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != tc.wantCode {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
				}
			}
			// reset-after forwards before resetting: the hit is already counted.
			if got := u.hits.Load(); got != tc.wantHits {
				t.Errorf("upstream saw %d requests, want %d", got, tc.wantHits)
			}
			s := p.Stats()
			if s.Requests != 1 {
				t.Errorf("stats %v: want 1 request", s)
			}
			tc.check(t, resp, took, s)
		})
	}
}

func TestWatchesAreClosedMidway(t *testing.T) {
	u := newUpstream(t)
	p := startProxy(t, u, "", Config{Seed: 3, RateWatchClose: 1, WatchMaxLife: 600 * time.Millisecond})
	c := client(t, p)
	clean, abrupt := 0, 0
	for i := 0; i < 8; i++ {
		start := time.Now()
		resp, err := c.Get(p.URL + "/api/v1/secrets?watch=true")
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines++
		}
		resp.Body.Close()
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("watch %d lasted %s, want it cut within 600ms", i, took)
		}
		if sc.Err() == nil {
			clean++
		} else {
			abrupt++
		}
	}
	if clean == 0 || abrupt == 0 {
		t.Errorf("want both clean and abrupt ends over 8 watches, got %d clean, %d abrupt", clean, abrupt)
	}
	if s := p.Stats(); s.WatchClosed != 8 || s.Forwarded != 8 {
		t.Errorf("stats %v", s)
	}
}

func TestSameSeedSameFaults(t *testing.T) {
	cfg := Config{Seed: 42, Rate429: 0.1, Rate500: 0.1, Rate503: 0.1, RateSlow: 0.1, SlowDelay: time.Millisecond}
	var runs [2][]int
	for r := range runs {
		u := newUpstream(t)
		p := startProxy(t, u, "", cfg)
		c := client(t, p)
		for i := 0; i < 200; i++ {
			resp, err := c.Get(p.URL + "/api/v1/pods")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			runs[r] = append(runs[r], resp.StatusCode)
		}
		s := p.Stats()
		// 200 draws at 10% each: 20 expected; 6..40 is far beyond 4 sigma.
		for _, n := range []int64{s.TooManyRequests, s.InternalError, s.ServiceUnavailable, s.Slow} {
			if n < 6 || n > 40 {
				t.Errorf("run %d: a 10%% fault happened %d times in 200 requests: %v", r, n, s)
			}
		}
	}
	if fmt.Sprint(runs[0]) != fmt.Sprint(runs[1]) {
		t.Errorf("the same seed gave different faults:\n%v\n%v", runs[0], runs[1])
	}
}

func TestMatchAndSetEnabledLimitFaults(t *testing.T) {
	u := newUpstream(t)
	p := startProxy(t, u, "", Config{Rate503: 1, Match: func(r *http.Request) bool { return r.Method == "POST" }})
	c := client(t, p)
	resp, err := c.Get(p.URL + "/api/v1/pods")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET outside Match: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = c.Post(p.URL+"/api/v1/pods", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("POST inside Match: %v %v", resp, err)
	}
	resp.Body.Close()
	p.SetEnabled(false)
	resp, err = c.Post(p.URL+"/api/v1/pods", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST while disabled: %v %v", resp, err)
	}
	resp.Body.Close()
	if s := p.Stats(); s.ServiceUnavailable != 1 || s.Requests != 3 {
		t.Errorf("stats %v", s)
	}
}

func TestKubeconfigPointsAtTheProxy(t *testing.T) {
	u := newUpstream(t)
	src := filepath.Join(t.TempDir(), "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: u.srv.URL, CertificateAuthorityData: u.restConfig().CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "not-a-real-token"}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	if err := clientcmd.WriteToFile(*kc, src); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u, src, Config{})
	st, err := os.Stat(p.Kubeconfig)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig %s: %v %v", p.Kubeconfig, st, err)
	}
	dst, err := os.Stat(filepath.Dir(p.Kubeconfig))
	if err != nil || dst.Mode().Perm() != 0o700 {
		t.Fatalf("kubeconfig folder: %v %v", dst, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != p.URL || cfg.BearerToken != "not-a-real-token" {
		t.Fatalf("kubeconfig host %q token kept %v", cfg.Host, cfg.BearerToken != "")
	}
	for _, c := range []*rest.Config{cfg, p.RESTConfig()} {
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		v, err := cs.Discovery().ServerVersion()
		if err != nil || v.GitVersion != "v1.34.4" {
			t.Fatalf("version through the proxy: %v %v", v, err)
		}
	}
	if s := p.Stats(); s.Requests != 2 || u.hits.Load() != 2 {
		t.Errorf("stats %v, upstream hits %d", s, u.hits.Load())
	}
	_ = p.Close()
	if _, err := os.Stat(p.Kubeconfig); !os.IsNotExist(err) {
		t.Errorf("Close left the kubeconfig behind: %v", err)
	}
}

func TestMatchHelpers(t *testing.T) {
	m := All(Methods("PUT", "DELETE"), Resource("secrets"))
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"PUT", "/api/v1/namespaces/a/secrets/s", true},
		{"DELETE", "/api/v1/namespaces/a/secrets/s", true},
		{"GET", "/api/v1/namespaces/a/secrets/s", false},
		{"PUT", "/api/v1/namespaces/secrets/configmaps/c", false},
		{"PUT", "/api/v1/namespaces/a/configmaps/secrets", false},
		{"DELETE", "/apis/example.com/v1/namespaces/a/secrets/x", true},
		{"DELETE", "/api/v1/namespaces/secrets", false},
		{"POST", "/api/v1/namespaces/a/serviceaccounts/b/token", false},
	} {
		r, _ := http.NewRequest(tc.method, "https://x"+tc.path, nil)
		if got := m(r); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// A script stages an exact sequence and leaves the rest to the rates.
func TestScriptStagesFaults(t *testing.T) {
	u := newUpstream(t)
	var posts atomic.Int64
	p := startProxy(t, u, "", Config{Script: func(r *http.Request) Fault {
		if r.Method != "POST" {
			return ByRates
		}
		switch posts.Add(1) {
		case 1:
			return ResetAfter
		case 2:
			return Unavailable
		case 3:
			return "no-such-fault"
		}
		return NoFault
	}})
	c := client(t, p)
	post := func() (int, error) {
		resp, err := c.Post(p.URL+"/api/v1/pods", "application/json", strings.NewReader("{}"))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if _, err := post(); err == nil {
		t.Fatal("the reset-after POST got an answer")
	}
	if u.hits.Load() != 1 {
		t.Fatalf("reset-after did not reach the upstream: %d hits", u.hits.Load())
	}
	for i, want := range []int{503, 500, 200} {
		if code, err := post(); err != nil || code != want {
			t.Fatalf("POST %d: %d %v, want %d", i+2, code, err, want)
		}
	}
	// Unscripted requests follow the rates (none here).
	resp, err := c.Get(p.URL + "/api/v1/pods")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	if s := p.Stats(); s.ResetAfter != 1 || s.ServiceUnavailable != 1 || s.InternalError != 1 {
		t.Errorf("stats %v", s)
	}
}
