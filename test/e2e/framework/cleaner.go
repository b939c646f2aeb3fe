package framework

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The controller and flag of kube-controller-manager v1.34 that the oracle
// runs:
//   - LegacyServiceAccountTokenCleanerController in
//     cmd/kube-controller-manager/names/controller_names.go (alias
//     legacy-service-account-token-cleaner, newLegacyServiceAccountTokenCleanerControllerDescriptor
//     in cmd/kube-controller-manager/app/core.go);
//   - the period flag, LegacySATokenCleanerOptions.AddFlags in
//     cmd/kube-controller-manager/app/options/legacyserviceaccounttokencleaner.go
//     (default 365 days, pkg/controller/serviceaccount/config/v1alpha1/defaults.go).
const (
	cleanerController  = "legacy-serviceaccount-token-cleaner-controller"
	cleanerPeriodFlag  = "--legacy-service-account-token-clean-up-period"
	cleanerSettle      = 2 * time.Second
	cleanerStartBudget = 90 * time.Second
)

// CleanerRun is what one evaluation of kube-controller-manager's legacy
// token cleaner did, read from the HTTP requests it logged.
type CleanerRun struct {
	// Log is the controller manager's log (in the cluster folder).
	Log string
	// Invalidated are "NS/NAME" of the Secrets it labelled
	// kubernetes.io/legacy-token-invalid-since (a PATCH answered 2xx).
	Invalidated []string
	// Deleted are "NS/NAME" of the Secrets it deleted (a DELETE answered
	// 2xx).
	Deleted []string
}

var cleanerRuns atomic.Int64

// The lines client-go logs at -v=6 for every answered request (Response,
// debuggingRoundTripper.RoundTrip in k8s.io/client-go/transport/round_trippers.go),
// with the controller's name when it logs through its contextual logger:
//
//	"Response" logger="legacy-serviceaccount-token-cleaner-controller" verb="PATCH" url="https://127.0.0.1:1/api/v1/namespaces/NS/secrets/NAME" status="200 OK" milliseconds=3
var (
	responseLine  = regexp.MustCompile(`"Response" (?:[a-zA-Z]+="[^"]*" )*?verb="([A-Z]+)" url="([^"]*)" status="(\d*)`)
	secretURL     = regexp.MustCompile(`/api/v1/namespaces/([^/?]+)/secrets/([^/?]+)(?:\?|$)`)
	trackingRead  = regexp.MustCompile(`/api/v1/namespaces/kube-system/configmaps/` + TrackingConfigMap + `(?:\?|$)`)
	cacheSyncLine = regexp.MustCompile(`Caches are synced.*legacy-service-account-token-cleaner`)
)

// RunLegacyTokenCleanerOnce runs kube-controller-manager's own legacy
// token cleaner against the cluster for exactly one evaluation, with the
// given clean-up period, and reports what it changed: an oracle to compare
// a forecast with.
//
// It starts a second kube-controller-manager (the cached binary, the
// cluster's admin kubeconfig) with only that controller, no leader
// election and no serving port. Upstream
// (pkg/controller/serviceaccount/legacy_serviceaccount_token_cleaner.go),
// Run waits for its ServiceAccount, Secret and Pod caches, then starts
// wait.UntilWithContext(evaluateSATokens, 24h), whose first call is
// immediate; evaluateSATokens first GETs the tracking ConfigMap (the
// gate: nothing is done while now < since + 1 day + period), then walks
// the cached Secrets, PATCHing or DELETEing one at a time. It logs no line
// at its end, so: the answer to that GET (logged at -v=6) marks the start,
// and the evaluation is taken as over once no further request has been
// answered for cleanerSettle (between requests it only reads its
// in-memory caches). The process is then stopped and its whole log read
// again: a write answered after the settle still counts, and one cut short
// by the stop fails the test rather than going unseen. It is also recorded in
// the cluster's pids file so that `hack/local-cluster.sh down` stops it if
// this test process dies first, and killed when the test ends.
func (c *Cluster) RunLegacyTokenCleanerOnce(t testing.TB, period time.Duration) CleanerRun {
	t.Helper()
	bin, err := ControlPlaneBinary("kube-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	run := CleanerRun{Log: filepath.Join(c.Dir, "logs", fmt.Sprintf("legacy-token-cleaner-%d.log", cleanerRuns.Add(1)))}
	logFile, err := os.Create(run.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--kubeconfig", c.Kubeconfig,
		"--controllers", cleanerController,
		cleanerPeriodFlag+"="+period.String(),
		"--leader-elect=false", "--secure-port=0",
		// -v=6 logs every answered request, the only trace of what the
		// cleaner did and of when its evaluation began.
		"-v=6",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = cleanerProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	if f, err := os.OpenFile(filepath.Join(c.Dir, "pids"), os.O_APPEND|os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
	}

	var (
		started, synced bool
		lastAnswer      time.Time
		offset          int64
		pending         []byte
	)
	deadline := time.Now().Add(cleanerStartBudget)
	for {
		select {
		case <-done:
			stop()
			t.Fatalf("kube-controller-manager (legacy token cleaner) exited early; its log:\n%s", tail(run.Log, 30))
		default:
		}
		lines, n := newLines(t, run.Log, offset, &pending)
		offset = n
		for _, l := range lines {
			if cacheSyncLine.MatchString(l) {
				synced = true
			}
			m := responseLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if verb, url, status := m[1], m[2], m[3]; verb == "GET" && trackingRead.MatchString(url) {
				if status != "200" {
					stop()
					t.Fatalf("the cleaner could not read kube-system/%s (HTTP %s): it changes nothing without it; log %s", TrackingConfigMap, status, run.Log)
				}
				started = true
			}
			if started {
				lastAnswer = time.Now()
			}
		}
		if started && time.Since(lastAnswer) >= cleanerSettle {
			break
		}
		if !started && time.Now().After(deadline) {
			stop()
			t.Fatalf("the legacy token cleaner did not start its evaluation within %s (caches synced: %v); its log:\n%s", cleanerStartBudget, synced, tail(run.Log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	// Read the whole log of the stopped process, so that a request answered
	// after the settle, or cut short by the stop, is counted or reported.
	var rest []byte
	lines, _ := newLines(t, run.Log, 0, &rest)
	if len(rest) > 0 {
		lines = append(lines, string(rest))
	}
	d := cleanerDecisions(lines)
	run.Invalidated, run.Deleted = d.invalidated, d.deleted
	for _, l := range d.ignored {
		t.Logf("cleaner: %s (it ignores this answer: the Secret went or changed since its cache saw it)", l)
	}
	for _, l := range d.failed {
		t.Errorf("cleaner: %s; log %s", l, run.Log)
	}
	return run
}

type decisions struct {
	invalidated, deleted []string // NS/NAME, sorted
	ignored, failed      []string // "VERB NS/NAME answered HTTP CODE"
}

// cleanerDecisions reads what one evaluation did from the controller
// manager's log lines: the Secret PATCHes and DELETEs answered after its
// read of the tracking ConfigMap. evaluateSATokens only PATCHes to add
// the invalid-since label and only DELETEs an invalid Secret.
func cleanerDecisions(lines []string) decisions {
	var d decisions
	started := false
	for _, l := range lines {
		m := responseLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		verb, url, status := m[1], m[2], m[3]
		if verb == "GET" && trackingRead.MatchString(url) {
			started = true
		}
		s := secretURL.FindStringSubmatch(url)
		if !started || s == nil || (verb != "PATCH" && verb != "DELETE") {
			continue
		}
		name := s[1] + "/" + s[2]
		code, _ := strconv.Atoi(status)
		switch {
		case code/100 == 2 && verb == "PATCH":
			d.invalidated = append(d.invalidated, name)
		case code/100 == 2:
			d.deleted = append(d.deleted, name)
		case verb == "DELETE" && (code == 404 || code == 409):
			// evaluateSATokens ignores these: its Delete carries a
			// resourceVersion precondition.
			d.ignored = append(d.ignored, fmt.Sprintf("%s %s answered HTTP %s", verb, name, status))
		default:
			d.failed = append(d.failed, fmt.Sprintf("%s %s answered HTTP %q", verb, name, status))
		}
	}
	sort.Strings(d.invalidated)
	sort.Strings(d.deleted)
	return d
}

// newLines returns the complete lines written to path after offset, and
// the offset after them; a partial last line waits in pending.
func newLines(t testing.TB, path string, offset int64, pending *[]byte) ([]string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		t.Fatal(err)
	}
	var lines []string
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadBytes('\n')
		offset += int64(len(b))
		if err != nil {
			*pending = append(*pending, b...)
			return lines, offset
		}
		lines = append(lines, string(append(*pending, b...)))
		*pending = (*pending)[:0]
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
