// Package faultproxy is a fault-injecting reverse proxy for e2e tests: it sits
// on loopback between the plugin (or any client) and a local kube-apiserver
// and, at random with a fixed seed, answers 429 with Retry-After, 500 or 503,
// resets the TCP connection before or after the apiserver saw the request,
// delays responses, and ends watch streams midway.
//
// Use:
//
//	p, err := faultproxy.Start(cluster, faultproxy.Config{Seed: 1, Rate429: 0.05, Rate503: 0.05,
//		RateResetBefore: 0.03, RateResetAfter: 0.03, RateSlow: 0.05, RateWatchClose: 0.5, Logf: t.Logf})
//	defer p.Close()
//	run("--kubeconfig", p.Kubeconfig, ...)   // the cluster's kubeconfig, every server pointed at the proxy
//	cs := kubernetes.NewForConfigOrDie(p.RESTConfig())
//	t.Logf("%+v", p.Stats())                 // how many of each fault really happened
//
// Config.Match limits faults to some requests, e.g.
// faultproxy.All(faultproxy.Methods("PUT", "DELETE"), faultproxy.Resource("secrets")).
//
// The decision for each request is one draw of a math/rand source seeded with
// Config.Seed, so a run's mix of faults is reproducible up to the order in
// which concurrent requests arrive. Rates are probabilities per request and are
// tried in this order: 429, 500, 503, reset before, reset after, slow; their
// sum must not exceed 1. RateWatchClose is a separate draw for each watch that
// got through.
//
// What each fault means to the client:
//   - 429: not forwarded; a TooManyRequests Status with a Retry-After header
//     (client-go retries these by itself, up to 10 times, for every verb).
//   - 500, 503: not forwarded; an InternalError / ServiceUnavailable Status
//     WITHOUT Retry-After, so client-go does not retry and the product must.
//   - reset before: the connection is reset (TCP RST) before the request is
//     forwarded; the apiserver never saw it.
//   - reset after: the request IS forwarded and processed, then the connection
//     is reset instead of answering: the case that makes blind retries of
//     non-idempotent writes unsafe.
//   - slow: forwarded after SlowDelay.
//   - watch close: the watch is forwarded and ends after a random part of
//     WatchMaxLife, either cleanly (end of stream) or abruptly (connection
//     closed mid-body), chosen at random.
//
// Identity: the proxy terminates TLS with its own self-signed certificate
// (written into Kubeconfig and RESTConfig) and opens its own connections to the
// apiserver. A client that presents the cluster's admin client certificate is
// forwarded with that certificate; a client without a certificate is
// forwarded without one, so bearer tokens and impersonation headers pass
// through unchanged. Any other client certificate gets a 502. HTTP/1.1 only,
// so that a reset hits one request, not a whole HTTP/2 connection.
package faultproxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	mathrand "math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// Config sets the fault rates (probabilities per request, 0..1) and their
// parameters. The zero Config forwards everything untouched.
type Config struct {
	Seed int64

	Rate429         float64
	Rate500         float64
	Rate503         float64
	RateResetBefore float64
	RateResetAfter  float64
	RateSlow        float64
	RateWatchClose  float64

	RetryAfter   time.Duration // Retry-After of 429s, whole seconds; default 1s
	SlowDelay    time.Duration // default 300ms
	WatchMaxLife time.Duration // a closed watch lives a random part of this; default 2s

	// Match, when set, limits faults to the requests it accepts; the others
	// are always forwarded untouched (and counted in Requests only).
	Match func(*http.Request) bool
	// Script, when set, picks the fault of each request it has a plan for
	// (ByRates leaves the request to the rates and Match), so that a test
	// can stage an exact sequence. It may be called concurrently.
	Script func(*http.Request) Fault
	// Logf, when set, gets one line per injected fault (t.Logf fits).
	Logf func(format string, args ...any)
	// HTTP2 lets clients speak HTTP/2, as kube-apiserver does, so that a
	// client's requests share one connection. Resets need HTTP/1.1 (they
	// hijack the connection), so HTTP2 allows no reset faults.
	HTTP2 bool
}

// Stats counts requests and every fault that really happened.
type Stats struct {
	Requests           int64 // every request the proxy received
	Forwarded          int64 // requests that reached the apiserver (incl. reset-after)
	TooManyRequests    int64
	InternalError      int64
	ServiceUnavailable int64
	ResetBefore        int64
	ResetAfter         int64
	Slow               int64
	WatchClosed        int64
}

// Faults is the number of injected faults of every kind.
func (s Stats) Faults() int64 {
	return s.TooManyRequests + s.InternalError + s.ServiceUnavailable + s.ResetBefore + s.ResetAfter + s.Slow + s.WatchClosed
}

func (s Stats) String() string {
	return fmt.Sprintf("requests=%d forwarded=%d 429=%d 500=%d 503=%d reset-before=%d reset-after=%d slow=%d watch-closed=%d",
		s.Requests, s.Forwarded, s.TooManyRequests, s.InternalError, s.ServiceUnavailable, s.ResetBefore, s.ResetAfter, s.Slow, s.WatchClosed)
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is https://127.0.0.1:PORT.
	URL string
	// Kubeconfig is a copy of the cluster's kubeconfig (same users and
	// contexts) whose clusters all point at the proxy; 0600 in a 0700 folder
	// removed by Close.
	Kubeconfig string

	cfg      Config
	caPEM    []byte
	dir      string
	upstream *url.URL
	restCfg  *rest.Config
	adminDER []byte
	viaCert  *httputil.ReverseProxy
	viaNone  *httputil.ReverseProxy
	trCert   http.RoundTripper
	trNone   http.RoundTripper
	srv      *http.Server
	ln       net.Listener
	enabled  atomic.Bool

	mu  sync.Mutex
	rng *mathrand.Rand

	stats struct {
		requests, forwarded, tooMany, internal, unavailable, resetBefore, resetAfter, slow, watchClosed atomic.Int64
	}
}

// Start runs a proxy in front of the cluster's apiserver.
func Start(c *framework.Cluster, cfg Config) (*Proxy, error) {
	return start(c.RESTConfig, c.Kubeconfig, cfg)
}

func start(upstream *rest.Config, kubeconfig string, cfg Config) (*Proxy, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.SlowDelay == 0 {
		cfg.SlowDelay = 300 * time.Millisecond
	}
	if cfg.WatchMaxLife == 0 {
		cfg.WatchMaxLife = 2 * time.Second
	}
	u, err := url.Parse(upstream.Host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: bad upstream host %q", upstream.Host)
	}
	p := &Proxy{cfg: cfg, upstream: u, restCfg: rest.CopyConfig(upstream), rng: mathrand.New(mathrand.NewSource(cfg.Seed))}
	p.enabled.Store(true)
	if p.adminDER, err = clientCertDER(upstream); err != nil {
		return nil, err
	}
	if p.trCert, err = rest.TransportFor(p.restCfg); err != nil {
		return nil, fmt.Errorf("faultproxy: transport to the apiserver: %w", err)
	}
	anon := &rest.Config{Host: upstream.Host, TLSClientConfig: rest.TLSClientConfig{
		CAFile: upstream.CAFile, CAData: upstream.CAData, ServerName: upstream.ServerName, Insecure: upstream.Insecure,
	}}
	if p.trNone, err = rest.TransportFor(anon); err != nil {
		return nil, fmt.Errorf("faultproxy: transport to the apiserver: %w", err)
	}
	p.viaCert, p.viaNone = p.reverseProxy(p.trCert), p.reverseProxy(p.trNone)

	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	p.caPEM = certPEM
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.ln = ln
	p.URL = "https://" + ln.Addr().String()
	p.srv = &http.Server{
		Handler: http.HandlerFunc(p.serve),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pair},
			ClientAuth:   tls.RequestClientCert,
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		},
		// A non-nil empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0), // resets and aborts are the point
	}
	if cfg.HTTP2 {
		// net/http serves HTTP/2 itself when TLSNextProto is nil and
		// the listener offers h2.
		p.srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		p.srv.TLSNextProto = nil
	}
	go func() { _ = p.srv.Serve(tls.NewListener(ln, p.srv.TLSConfig)) }()

	if p.dir, err = os.MkdirTemp("", "faultproxy-"); err != nil {
		_ = p.Close()
		return nil, err
	}
	if kubeconfig != "" {
		if err := p.writeKubeconfig(kubeconfig); err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	return p, nil
}

func (c Config) check() error {
	rates := []float64{c.Rate429, c.Rate500, c.Rate503, c.RateResetBefore, c.RateResetAfter, c.RateSlow, c.RateWatchClose}
	sum := 0.0
	for i, r := range rates {
		if r < 0 || r > 1 {
			return fmt.Errorf("faultproxy: rate %v out of 0..1", r)
		}
		if i < len(rates)-1 {
			sum += r
		}
	}
	if sum > 1 {
		return fmt.Errorf("faultproxy: per-request rates add up to %.2f, more than 1", sum)
	}
	if c.HTTP2 && (c.RateResetBefore > 0 || c.RateResetAfter > 0 || c.Script != nil) {
		return fmt.Errorf("faultproxy: resets hijack an HTTP/1.1 connection: no reset faults or Script with HTTP2")
	}
	if c.RetryAfter%time.Second != 0 || c.RetryAfter < 0 {
		return fmt.Errorf("faultproxy: RetryAfter %s is not a whole number of seconds", c.RetryAfter)
	}
	return nil
}

// RESTConfig is the cluster's config pointed at the proxy.
func (p *Proxy) RESTConfig() *rest.Config {
	c := rest.CopyConfig(p.restCfg)
	c.Host = p.URL
	c.TLSClientConfig.CAFile, c.TLSClientConfig.CAData = "", append([]byte(nil), p.caPEM...)
	c.TLSClientConfig.ServerName, c.TLSClientConfig.Insecure = "", false
	return c
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	s := &p.stats
	return Stats{
		Requests: s.requests.Load(), Forwarded: s.forwarded.Load(), TooManyRequests: s.tooMany.Load(),
		InternalError: s.internal.Load(), ServiceUnavailable: s.unavailable.Load(), ResetBefore: s.resetBefore.Load(),
		ResetAfter: s.resetAfter.Load(), Slow: s.slow.Load(), WatchClosed: s.watchClosed.Load(),
	}
}

// SetEnabled turns fault injection off (false) or back on; requests are
// forwarded untouched while it is off. Handy for setting up and checking a
// test's objects through the same proxy.
func (p *Proxy) SetEnabled(on bool) { p.enabled.Store(on) }

// Close stops the proxy, cuts open connections (watches included) and
// removes the kubeconfig.
func (p *Proxy) Close() error {
	var err error
	if p.srv != nil {
		err = p.srv.Close()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
	return err
}

// Methods matches requests with one of these HTTP methods, e.g.
// Methods("POST", "PUT", "PATCH", "DELETE") for writes only.
func Methods(methods ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		return false
	}
}

// Resource matches API requests for this resource (plural, e.g. "secrets"),
// its subresources included: /api/v1/[namespaces/NS/]RESOURCE/... and
// /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE/....
func Resource(plural string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		switch {
		case len(parts) >= 3 && parts[0] == "api":
			parts = parts[2:]
		case len(parts) >= 4 && parts[0] == "apis":
			parts = parts[3:]
		default:
			return false
		}
		if parts[0] == "watch" { // the old /watch/ paths
			parts = parts[1:]
		}
		if len(parts) >= 3 && parts[0] == "namespaces" {
			parts = parts[2:]
		}
		return len(parts) > 0 && parts[0] == plural
	}
}

// All matches when every one of fs does.
func All(fs ...func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, f := range fs {
			if !f(r) {
				return false
			}
		}
		return true
	}
}

type fault int

const (
	none fault = iota
	tooMany
	internal
	unavailable
	resetBefore
	resetAfter
	slow
)

// Fault is a fault that Config.Script can stage.
type Fault string

const (
	ByRates     Fault = ""
	NoFault     Fault = "none"
	TooMany     Fault = "429"
	Internal    Fault = "500"
	Unavailable Fault = "503"
	ResetBefore Fault = "reset-before"
	// ResetAfter forwards the request, lets the apiserver answer, and
	// resets the client's connection: the change is made, the answer lost.
	ResetAfter Fault = "reset-after"
	Slow       Fault = "slow"
)

var scripted = map[Fault]fault{NoFault: none, TooMany: tooMany, Internal: internal, Unavailable: unavailable,
	ResetBefore: resetBefore, ResetAfter: resetAfter, Slow: slow}

var faultNames = map[fault]string{tooMany: "429", internal: "500", unavailable: "503", resetBefore: "reset-before", resetAfter: "reset-after", slow: "slow"}

func (p *Proxy) draw(r *http.Request) (f fault, watchLife time.Duration, abrupt bool) {
	if !p.enabled.Load() {
		return none, 0, false
	}
	if p.cfg.Script != nil {
		if s := p.cfg.Script(r); s != ByRates {
			f, ok := scripted[s]
			if !ok {
				// A test's typo must not pass as "no fault".
				p.logf("unknown scripted fault %q: answering 500", s)
				f = internal
			}
			return f, 0, false
		}
	}
	if p.cfg.Match != nil && !p.cfg.Match(r) {
		return none, 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.rng.Float64()
	for _, c := range []struct {
		f    fault
		rate float64
	}{{tooMany, p.cfg.Rate429}, {internal, p.cfg.Rate500}, {unavailable, p.cfg.Rate503}, {resetBefore, p.cfg.RateResetBefore}, {resetAfter, p.cfg.RateResetAfter}, {slow, p.cfg.RateSlow}} {
		if u < c.rate {
			f = c.f
			break
		}
		u -= c.rate
	}
	if isWatch(r) && p.rng.Float64() < p.cfg.RateWatchClose {
		watchLife = time.Duration(p.rng.Int63n(int64(p.cfg.WatchMaxLife))) + time.Millisecond
		abrupt = p.rng.Intn(2) == 0
	}
	return f, watchLife, abrupt
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "true" || w == "1" || strings.Contains(r.URL.Path, "/watch/")
}

func (p *Proxy) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf("faultproxy: "+format, args...)
	}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.stats.requests.Add(1)
	rp, tr := p.viaNone, p.trNone
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if !bytes.Equal(r.TLS.PeerCertificates[0].Raw, p.adminDER) {
			http.Error(w, "faultproxy: only the cluster's admin client certificate can be forwarded; use a token or that certificate", http.StatusBadGateway)
			return
		}
		rp, tr = p.viaCert, p.trCert
	}
	f, life, abrupt := p.draw(r)
	if f != none {
		p.logf("%s %s %s", faultNames[f], r.Method, r.URL.RequestURI())
	}
	switch f {
	case tooMany:
		p.stats.tooMany.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(int(p.cfg.RetryAfter/time.Second)))
		writeStatus(w, http.StatusTooManyRequests, "TooManyRequests", int(p.cfg.RetryAfter/time.Second))
		return
	case internal:
		p.stats.internal.Add(1)
		writeStatus(w, http.StatusInternalServerError, "InternalError", 0)
		return
	case unavailable:
		p.stats.unavailable.Add(1)
		writeStatus(w, http.StatusServiceUnavailable, "ServiceUnavailable", 0)
		return
	case resetBefore:
		p.stats.resetBefore.Add(1)
		reset(w)
		return
	case resetAfter:
		p.stats.forwarded.Add(1)
		if err := p.forwardAndDrop(r, tr); err != nil {
			p.logf("reset-after %s %s: forwarding failed: %v", r.Method, r.URL.RequestURI(), err)
		}
		p.stats.resetAfter.Add(1)
		reset(w)
		return
	case slow:
		p.stats.slow.Add(1)
		select {
		case <-time.After(p.cfg.SlowDelay):
		case <-r.Context().Done():
			return
		}
	}
	p.stats.forwarded.Add(1)
	if life > 0 {
		p.stats.watchClosed.Add(1)
		how := "cleanly"
		if abrupt {
			how = "abruptly"
		}
		p.logf("watch-close after %s (%s) %s", life.Round(time.Millisecond), how, r.URL.RequestURI())
		r = r.WithContext(context.WithValue(r.Context(), watchLifeKey{}, watchLife{life, abrupt}))
	}
	rp.ServeHTTP(w, r)
}

type watchLifeKey struct{}

type watchLife struct {
	d      time.Duration
	abrupt bool
}

func (p *Proxy) reverseProxy(tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.upstream)
			pr.Out.Host = p.upstream.Host
		},
		Transport:     tr,
		FlushInterval: -1,                         // watches stream
		ErrorLog:      log.New(io.Discard, "", 0), // cut watches are the point
		ModifyResponse: func(resp *http.Response) error {
			if wl, ok := resp.Request.Context().Value(watchLifeKey{}).(watchLife); ok {
				resp.Body = &cutBody{ReadCloser: resp.Body, deadline: time.Now().Add(wl.d), abrupt: wl.abrupt}
			}
			return nil
		},
		// A copy error mid-body (an abrupt watch cut) makes ReverseProxy
		// abort the connection itself; this only sees failures to connect.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				p.logf("forwarding %s %s: %v", r.Method, r.URL.RequestURI(), err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

var errWatchCut = errors.New("faultproxy: watch cut")

// cutBody ends a streamed body at its deadline: io.EOF (clean end of the
// watch) or an error, which makes ReverseProxy abort the connection.
type cutBody struct {
	io.ReadCloser
	deadline time.Time
	abrupt   bool
	once     sync.Once
	timer    *time.Timer
	cut      atomic.Bool
}

func (b *cutBody) Read(buf []byte) (int, error) {
	b.once.Do(func() {
		// A blocked Read only returns when the body is closed.
		b.timer = time.AfterFunc(time.Until(b.deadline), func() { b.cut.Store(true); _ = b.ReadCloser.Close() })
	})
	if b.cut.Load() {
		return 0, b.end()
	}
	n, err := b.ReadCloser.Read(buf)
	if b.cut.Load() {
		return n, b.end()
	}
	return n, err
}

func (b *cutBody) end() error {
	if b.abrupt {
		return errWatchCut
	}
	return io.EOF
}

func (b *cutBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	return b.ReadCloser.Close()
}

// forwardAndDrop sends the request to the apiserver and reads the whole
// answer, which the client will never get.
func (p *Proxy) forwardAndDrop(r *http.Request, tr http.RoundTripper) error {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host, out.Host = p.upstream.Scheme, p.upstream.Host, p.upstream.Host
	if isWatch(r) {
		// A watch never ends by itself: having been accepted is enough.
		ctx, cancel := context.WithTimeout(r.Context(), 200*time.Millisecond)
		defer cancel()
		out = out.WithContext(ctx)
	}
	resp, err := tr.RoundTrip(out)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn() // no close_notify alert: just the RST
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

func writeStatus(w http.ResponseWriter, code int, reason string, retryAfter int) {
	st := map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": fmt.Sprintf("faultproxy: injected %d", code), "reason": reason, "code": code,
	}
	if retryAfter > 0 {
		st["details"] = map[string]any{"retryAfterSeconds": retryAfter}
	}
	b, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (p *Proxy) writeKubeconfig(src string) error {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return fmt.Errorf("faultproxy: read kubeconfig: %w", err)
	}
	for _, c := range cfg.Clusters {
		c.Server = p.URL
		c.CertificateAuthority, c.CertificateAuthorityData = "", append([]byte(nil), p.caPEM...)
		c.TLSServerName, c.InsecureSkipTLSVerify = "", false
	}
	p.Kubeconfig = filepath.Join(p.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p.Kubeconfig); err != nil {
		return fmt.Errorf("faultproxy: write kubeconfig: %w", err)
	}
	return os.Chmod(p.Kubeconfig, 0o600)
}

func clientCertDER(c *rest.Config) ([]byte, error) {
	data := c.CertData
	if len(data) == 0 && c.CertFile != "" {
		b, err := os.ReadFile(c.CertFile)
		if err != nil {
			return nil, fmt.Errorf("faultproxy: read client certificate: %w", err)
		}
		data = b
	}
	if len(data) == 0 {
		return nil, nil
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("faultproxy: the client certificate is not PEM")
	}
	return blk.Bytes, nil
}

// selfSigned makes the proxy's serving certificate, also its own CA.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "faultproxy"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}
