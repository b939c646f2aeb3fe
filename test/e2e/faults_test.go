package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
)

// createServiceAccounts makes n labelled ServiceAccounts sa-000... quickly.
func createServiceAccounts(t *testing.T, ns string, n int, labels map[string]string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	idx := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				_, err := cluster.Client.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa-%03d", i), Labels: labels},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		idx <- i
	}
	close(idx)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// tokenLines checks every "NAMESPACE/NAME TOKEN" line of create's stdout:
// the token's subject is that ServiceAccount. It returns the names.
func tokenLines(t *testing.T, stdout string) (names []string, tokens []string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		id, tok, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("not a NAMESPACE/NAME TOKEN line: %.80q", line)
		}
		ns, name, _ := strings.Cut(id, "/")
		dec, err := jwt.Decode(tok)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if want := "system:serviceaccount:" + ns + ":" + name; dec.Claims.Subject != want {
			t.Fatalf("%s: token for %q", id, dec.Claims.Subject)
		}
		names, tokens = append(names, id), append(tokens, tok)
	}
	return names, tokens
}

// Under random 429s, 500s, 503s, resets and slow answers, create for 200
// ServiceAccounts (-l -A) still creates all 200, and the tokens pass the
// cluster's TokenReview, itself asked through the faulty proxy (--batch).
// The per-request chance that a fault reaches the product (500, 503, reset)
// is 10%: all 5 tries of one token fail with probability 1e-5, so the whole
// run needs no luck (about 0.2% over 200 tokens).
func TestFaultsCreate200AllSucceed(t *testing.T) {
	ns := cluster.CreateNamespace(t, "faults")
	label := "faults-" + ns
	createServiceAccounts(t, ns, 200, map[string]string{"suite": label})

	p, err := faultproxy.Start(cluster, faultproxy.Config{
		Seed: 7, Rate429: 0.05, Rate500: 0.02, Rate503: 0.04, RateResetBefore: 0.02, RateResetAfter: 0.02,
		RateSlow: 0.05, SlowDelay: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	r := run(t, "", "--kubeconfig", p.Kubeconfig, "create", "-l", "suite="+label, "-A").MustCode(t, 0)
	names, tokens := tokenLines(t, r.Stdout)
	if len(names) != 200 || names[0] != ns+"/sa-000" || names[199] != ns+"/sa-199" {
		t.Fatalf("%d tokens (%v ... ), want 200 in order", len(names), names[:min(3, len(names))])
	}
	if strings.Contains(r.Stderr, "error") {
		t.Errorf("stderr reports errors on a run that succeeded:\n%s", r.Stderr)
	}
	s := p.Stats()
	t.Logf("create: %v", s)
	if s.TooManyRequests+s.InternalError+s.ServiceUnavailable+s.ResetBefore+s.ResetAfter < 10 {
		t.Fatalf("too few faults to mean anything: %v", s)
	}

	// Every token is one the cluster accepts (asked directly, concurrently).
	var wg sync.WaitGroup
	rejected := make(chan string, len(tokens))
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(tokens); i += 8 {
				tr, err := cluster.Client.AuthenticationV1().TokenReviews().Create(context.Background(),
					&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tokens[i]}}, metav1.CreateOptions{})
				if err != nil || !tr.Status.Authenticated {
					rejected <- fmt.Sprintf("%s: %v", names[i], err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(rejected)
	for msg := range rejected {
		t.Errorf("token not accepted by the cluster: %s", msg)
	}

	// verify --batch --token-review is sequential, and each 429 costs its
	// Retry-After second: 50 tokens keep this part short.
	before := p.Stats()
	r = run(t, strings.Join(tokens[:50], "\n")+"\n", "--kubeconfig", p.Kubeconfig, "verify", "--batch", "--token-review").MustCode(t, 0)
	if got := strings.Count(r.Stdout, "\tVERIFIED\t"); got != 50 {
		t.Fatalf("%d of 50 tokens verified:\n%s", got, r.Stdout)
	}
	after := p.Stats()
	if after.Faults()-before.Faults() < 3 {
		t.Errorf("verify --batch ran with too few faults: %v", after)
	}
	t.Logf("verify --batch --token-review: %v", after)
}

// When some tokens cannot be had (their TokenRequests always answer 503),
// create gives up on exactly those, after retrying, names each on stderr,
// prints all the others and exits 1 with the right count.
func TestFaultsCreateReportsWhatItCouldNotDo(t *testing.T) {
	ns := cluster.CreateNamespace(t, "faults-doomed")
	label := "faults-" + ns
	createServiceAccounts(t, ns, 200, map[string]string{"suite": label})
	doomed := regexp.MustCompile(`/serviceaccounts/sa-(007|100|199)/token$`)
	p, err := faultproxy.Start(cluster, faultproxy.Config{
		Seed: 1, Rate503: 1,
		Match: func(r *http.Request) bool { return r.Method == http.MethodPost && doomed.MatchString(r.URL.Path) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	r := run(t, "", "--kubeconfig", p.Kubeconfig, "create", "-l", "suite="+label, "-n", ns).MustCode(t, 1)
	names, _ := tokenLines(t, r.Stdout)
	if len(names) != 197 {
		t.Fatalf("%d tokens on stdout, want 197", len(names))
	}
	for _, n := range names {
		if doomed.MatchString("/serviceaccounts/" + strings.TrimPrefix(n, ns+"/") + "/token") {
			t.Errorf("a token for doomed %s was printed", n)
		}
	}
	for _, sa := range []string{"sa-007", "sa-100", "sa-199"} {
		r.StderrHas(t, fmt.Sprintf("error: serviceaccount %s/%s: ", ns, sa))
	}
	r.StderrHas(t, "gave up after 5 attempts", "3 of 200 tokens could not be created")
	if got := strings.Count(r.Stderr, "error: serviceaccount"); got != 3 {
		t.Errorf("%d failures reported, want 3:\n%s", got, r.Stderr)
	}
	if s := p.Stats(); s.ServiceUnavailable != 15 {
		t.Errorf("want 3 ServiceAccounts x 5 attempts = 15 injected 503s, got %v", s)
	}
}

// The proxy really cuts the apiserver's watch streams (HTTP/2 upstream,
// chunked HTTP/1.1 to the client), which `wait`-style code must survive.
func TestFaultsWatchIsCutMidway(t *testing.T) {
	ns := cluster.CreateNamespace(t, "faults-watch")
	p, err := faultproxy.Start(cluster, faultproxy.Config{Seed: 2, RateWatchClose: 1, WatchMaxLife: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cs, err := kubernetes.NewForConfig(p.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		w, err := cs.CoreV1().ServiceAccounts(ns).Watch(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		events := 0
		timeout := time.After(10 * time.Second)
	loop:
		for {
			select {
			case _, ok := <-w.ResultChan():
				if !ok {
					break loop
				}
				events++
			case <-timeout:
				w.Stop()
				t.Fatalf("watch %d still open after 10s", i)
			}
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("watch %d lasted %s, want it cut within 1s", i, took)
		}
		t.Logf("watch %d: %d events, cut after %s", i, events, time.Since(start).Round(time.Millisecond))
	}
	if s := p.Stats(); s.WatchClosed != 2 {
		t.Errorf("stats %v", s)
	}
}
