package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bound-token/kubectl-bound-token/pkg/fleetapply"
	"github.com/bound-token/kubectl-bound-token/pkg/legacy"
	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// applyReport is -o json of a fleet apply.
type applyReport struct {
	Kind, BackupDir string
	Waves           [][]string
	Clusters        []struct {
		Context, UID, State, Message string
		Wave                         int
		Counts                       map[string]int
	}
	Stopped string
}

func parseApply(t *testing.T, r framework.Result) *applyReport {
	t.Helper()
	var doc applyReport
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil || doc.Kind != "FleetApply" {
		t.Fatalf("stdout is not one FleetApply (%v)\nstdout: %s\nstderr: %s", err, r.Stdout, r.Stderr)
	}
	return &doc
}

func (r *applyReport) states() map[string]string {
	out := map[string]string{}
	for _, c := range r.Clusters {
		out[c.Context] = c.State
	}
	return out
}

// invalidSince is the invalid-since label of NAME in NS of cluster x.
func invalidSince(t *testing.T, x, ns, name string) string {
	t.Helper()
	return clusters[x].GetSecret(t, ns, name).Labels[legacy.LabelInvalidSince]
}

func kubeSystemUID(t *testing.T, x string) string {
	t.Helper()
	ns, err := clusters[x].Client.CoreV1().Namespaces().Get(context.Background(), metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(ns.UID)
}

// The flow over the three real clusters, one cluster per wave
// (--cluster-wave-growth 1): cluster one is changed and watched quietly;
// cluster two is changed, and during its watch a client presents its
// token, which the guard (installed by the run) restores: the run stops,
// and cluster three is untouched. The same command with the same folder
// then resumes: one is skipped as done, two's restored Secret is left
// alone, three is changed. A restore through a context rewritten to reach
// another cluster is refused in one line and touches nothing; restore of
// the fleet folder then undoes every cluster.
func TestFleetApplyInClusterWaves(t *testing.T) {
	ns := "wave-apply"
	secrets := map[string]string{}
	for _, x := range names {
		ensureNamespace(t, clusters[x], ns)
		secrets[x] = x + "-token"
		clusters[x].CreateLegacySecret(t, ns, "app", secrets[x], true)
	}
	ctxs := map[string]entry{}
	for _, x := range names {
		ctxs[x] = direct(t, clusters[x], ns)
	}
	kubeconfig := writeKubeconfig(t, ctxs)
	dir := filepath.Join(t.TempDir(), "fleet-backup")
	args := []string{"migrate", "--contexts", "one,two,three", "-n", ns, "--apply", "--yes", "--include-unknown",
		"--backup-dir", dir, "--cluster-wave-growth", "1", "--cluster-wave-watch", "12s", "-o", "json"}

	// During wave 2 the client of cluster two presents its token.
	presented := make(chan int, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			s, err := clusters["two"].Client.CoreV1().Secrets(ns).Get(context.Background(), secrets["two"], metav1.GetOptions{})
			if err == nil && s.Labels[legacy.LabelInvalidSince] != "" {
				time.Sleep(time.Second) // the authenticator's Secret informer catches up
				presented <- clusters["two"].PresentToken(t, s, "nightly-report/1.0")
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		presented <- 0
	}()
	first := run(t, kubeconfig, args...)
	if code := <-presented; code != http.StatusUnauthorized {
		t.Fatalf("cluster two's token presented during its wave: HTTP %d, want 401 (invalidated)\nstderr: %s", code, first.Stderr)
	}
	t.Logf("first run, stderr:\n%s", first.Stderr)
	first.MustCode(t, 1)
	rep := parseApply(t, first)
	if want := map[string]string{"one": fleetapply.Done, "two": fleetapply.ClientSeen, "three": fleetapply.NotRun}; !equalMaps(rep.states(), want) {
		t.Fatalf("first run: states %v, want %v\nstderr: %s", rep.states(), want, first.Stderr)
	}
	if rep.Stopped == "" || !strings.Contains(first.Stderr, "cluster wave 2: two client-seen") {
		t.Errorf("the stop is not said: stopped %q\nstderr: %s", rep.Stopped, first.Stderr)
	}
	if invalidSince(t, "one", ns, secrets["one"]) == "" {
		t.Errorf("cluster one (wave 1) was not invalidated")
	}
	// The run installed the admission-policy guard in cluster two (it
	// serves MutatingAdmissionPolicy): that guard, not a watch, restored it.
	if s := clusters["two"].GetSecret(t, ns, secrets["two"]); s.Labels[legacy.LabelInvalidSince] != "" || s.Annotations[legacy.AnnotationRestoredOnUse] == "" ||
		s.Annotations[legacy.AnnotationRestoredBy] != legacy.RestoredByPolicy {
		t.Errorf("cluster two: the admission-policy guard did not restore the presented Secret: labels %v annotations %v", s.Labels, s.Annotations)
	}
	if v := invalidSince(t, "three", ns, secrets["three"]); v != "" {
		t.Fatalf("cluster three was changed (invalid since %s) after wave 2 stopped the run", v)
	}
	uid := map[string]string{}
	for _, x := range names {
		uid[x] = kubeSystemUID(t, x)
	}
	if _, err := os.Stat(filepath.Join(dir, uid["three"])); err == nil {
		t.Errorf("cluster three has a backup folder: it was started")
	}
	ix, err := fleetapply.ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e := ix.Entry(uid["one"]); e == nil || e.State != fleetapply.StateDone || e.Context != "one" || e.Folder != uid["one"] {
		t.Errorf("index entry of one: %+v", e)
	}
	if e := ix.Entry(uid["two"]); e == nil || e.State != fleetapply.StateStarted {
		t.Errorf("index entry of two: %+v", e)
	}

	// Resume: the same command, the same folder.
	second := run(t, kubeconfig, args...)
	t.Logf("resumed run, stderr:\n%s", second.Stderr)
	second.MustCode(t, 0)
	rep = parseApply(t, second)
	if want := map[string]string{"one": fleetapply.Skipped, "two": fleetapply.Done, "three": fleetapply.Done}; !equalMaps(rep.states(), want) {
		t.Fatalf("resumed run: states %v, want %v\nstderr: %s", rep.states(), want, second.Stderr)
	}
	if invalidSince(t, "three", ns, secrets["three"]) == "" {
		t.Errorf("the resumed run did not invalidate cluster three")
	}
	if v := invalidSince(t, "two", ns, secrets["two"]); v != "" {
		t.Errorf("the resumed run invalidated cluster two's restored-on-use Secret again")
	}

	// A context rewritten to reach cluster one: its restore is refused.
	moved := map[string]entry{"three": direct(t, clusters["one"], ns)}
	before := clusters["one"].GetSecret(t, ns, secrets["one"]).ResourceVersion
	refused := run(t, writeKubeconfig(t, moved), "restore", "--from", dir, "--contexts", "three")
	t.Logf("refused restore, stderr:\n%s", refused.Stderr)
	refused.MustCode(t, 2)
	if !strings.Contains(refused.Stderr, "context three now reaches cluster "+uid["one"]+", not cluster "+uid["three"]) || strings.Count(refused.Stderr, "now reaches") != 1 {
		t.Errorf("refusal not said in one line:\n%s", refused.Stderr)
	}
	if after := clusters["one"].GetSecret(t, ns, secrets["one"]).ResourceVersion; after != before {
		t.Errorf("the refused restore changed cluster one's Secret (resourceVersion %s -> %s)", before, after)
	}
	if invalidSince(t, "three", ns, secrets["three"]) == "" || invalidSince(t, "one", ns, secrets["one"]) == "" {
		t.Errorf("the refused restore restored something")
	}

	// Restore of the whole fleet folder undoes every cluster.
	restored := run(t, kubeconfig, "restore", "--from", dir, "-o", "json").MustCode(t, 0)
	for _, x := range names {
		if v := invalidSince(t, x, ns, secrets[x]); v != "" {
			t.Errorf("cluster %s still invalid since %s after the fleet restore\nstderr: %s", x, v, restored.Stderr)
		}
	}
	doc := parse(t, restored)
	if doc.Kind != "FleetReport" || doc.Command != "restore" || doc.Summary.Checked != 3 {
		t.Errorf("restore report: %+v", doc.Summary)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A wave never changes more than was confirmed: a Secret that becomes
// eligible in cluster two after the question (while wave 1 is watched) is
// left alone there as skipped-not-confirmed, and stays valid; the one the
// question counted is invalidated.
func TestFleetApplyNeverChangesMoreThanConfirmed(t *testing.T) {
	ns := "wave-confirmed"
	for _, x := range []string{"one", "two"} {
		ensureNamespace(t, clusters[x], ns)
		clusters[x].CreateLegacySecret(t, ns, "app", x+"-counted", true)
	}
	kubeconfig := writeKubeconfig(t, map[string]entry{"one": direct(t, clusters["one"], ns), "two": direct(t, clusters["two"], ns)})
	dir := filepath.Join(t.TempDir(), "fleet-backup")
	created := make(chan bool, 1)
	go func() {
		// Wave 1 has started (cluster one invalidated): the question is
		// behind us; a new Secret appears in cluster two.
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			s, err := clusters["one"].Client.CoreV1().Secrets(ns).Get(context.Background(), "one-counted", metav1.GetOptions{})
			if err == nil && s.Labels[legacy.LabelInvalidSince] != "" {
				clusters["two"].CreateLegacySecret(t, ns, "app", "two-late", true)
				created <- true
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		created <- false
	}()
	r := run(t, kubeconfig, "migrate", "--contexts", "one,two", "-n", ns, "--apply", "--yes", "--include-unknown",
		"--backup-dir", dir, "--cluster-wave-growth", "1", "--cluster-wave-watch", "15s", "-o", "json")
	t.Logf("stderr:\n%s", r.Stderr)
	if !<-created {
		t.Fatal("wave 1 never invalidated cluster one's Secret")
	}
	r.MustCode(t, 0)
	rep := parseApply(t, r)
	if want := map[string]string{"one": fleetapply.Done, "two": fleetapply.Done}; !equalMaps(rep.states(), want) {
		t.Fatalf("states %v, want %v", rep.states(), want)
	}
	for _, c := range rep.Clusters {
		if c.Context == "two" && (c.Counts[legacy.OutNotConfirmed] != 1 || c.Counts[legacy.OutInvalidated] != 1) {
			t.Errorf("cluster two's counts %v, want 1 invalidated and 1 %s", c.Counts, legacy.OutNotConfirmed)
		}
	}
	if v := invalidSince(t, "two", ns, "two-late"); v != "" {
		t.Errorf("a Secret the question never counted was invalidated (since %s)", v)
	}
	if invalidSince(t, "two", ns, "two-counted") == "" {
		t.Errorf("the counted Secret of cluster two was not invalidated")
	}
}

// An interrupted run (SIGINT during wave 1's watch) exits 1 saying how to
// go on; the interrupted cluster is not recorded done, so the same command
// with the same folder changes it again (its own folder resumed) and then
// the rest.
func TestFleetApplyResumesAfterInterruption(t *testing.T) {
	ns := "wave-interrupted"
	for _, x := range names {
		ensureNamespace(t, clusters[x], ns)
		clusters[x].CreateLegacySecret(t, ns, "app", x+"-token", true)
	}
	ctxs := map[string]entry{}
	for _, x := range names {
		ctxs[x] = direct(t, clusters[x], ns)
	}
	kubeconfig := writeKubeconfig(t, ctxs)
	dir := filepath.Join(t.TempDir(), "fleet-backup")
	args := func(watch string) []string {
		return []string{"migrate", "--contexts", "one,two,three", "-n", ns, "--apply", "--yes", "--include-unknown",
			"--backup-dir", dir, "--cluster-wave-growth", "2", "--cluster-wave-watch", watch, "-o", "json"}
	}
	bin := clusters["one"].PluginBinary(t)
	cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args("2m")...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for invalidSince(t, "one", ns, "one-token") == "" {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("wave 1 never invalidated cluster one\nstderr: %s", stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // into the watch
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	t.Logf("interrupted run, stderr:\n%s", stderr.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("interrupted run: %v, want exit 1 saying interrupted", err)
	}
	for _, x := range []string{"two", "three"} {
		if v := invalidSince(t, x, ns, x+"-token"); v != "" {
			t.Fatalf("cluster %s changed by the interrupted run", x)
		}
	}
	ix, err := fleetapply.ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e := ix.Entry(kubeSystemUID(t, "one")); e == nil || e.State == fleetapply.StateDone {
		t.Fatalf("the interrupted cluster is recorded as %+v, want started, not done", e)
	}

	r := run(t, kubeconfig, args("3s")...)
	t.Logf("resumed run, stderr:\n%s", r.Stderr)
	r.MustCode(t, 0)
	rep := parseApply(t, r)
	if want := map[string]string{"one": fleetapply.Done, "two": fleetapply.Done, "three": fleetapply.Done}; !equalMaps(rep.states(), want) {
		t.Fatalf("resumed run: states %v, want %v", rep.states(), want)
	}
	if !strings.Contains(r.Stderr, "context one: resuming the run recorded in") {
		t.Errorf("cluster one's own folder was not resumed")
	}
	for _, x := range names {
		if invalidSince(t, x, ns, x+"-token") == "" {
			t.Errorf("cluster %s not invalidated after the resumed run", x)
		}
	}
}

// A cluster that serves no MutatingAdmissionPolicy (a fourth control plane,
// started with the resource switched off) gets no admission-policy guard:
// the run refuses it without --allow-unguarded-clusters (exit 2, nothing
// changed); with the flag, the guard there is a watch inside the run,
// which restores a presented token during the run, and the run says at its
// end that this guard ended with it.
func TestFleetApplyUnguardedCluster(t *testing.T) {
	c, err := framework.Start(framework.Options{Name: fmt.Sprintf("fleet-%d-nomap", os.Getpid()),
		// The resources off, and their admission plugin with them: it waits
		// for their informers before kube-apiserver is ready.
		APIServerArgs: []string{"--runtime-config=admissionregistration.k8s.io/v1/mutatingadmissionpolicies=false,admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings=false",
			"--disable-admission-plugins=ServiceAccount,MutatingAdmissionPolicy"}})
	if err != nil {
		t.Fatalf("cannot start a control plane without MutatingAdmissionPolicy: %v", err)
	}
	defer c.Stop()
	ns := "wave-unguarded"
	ensureNamespace(t, c, ns)
	s := c.CreateLegacySecret(t, ns, "app", "nomap-token", true)
	kubeconfig := writeKubeconfig(t, map[string]entry{"nomap": direct(t, c, ns)})
	dir := filepath.Join(t.TempDir(), "fleet-backup")
	args := []string{"migrate", "--contexts", "nomap", "-n", ns, "--apply", "--yes", "--include-unknown",
		"--backup-dir", dir, "--cluster-wave-watch", "12s"}

	refused := run(t, kubeconfig, args...)
	t.Logf("without --allow-unguarded-clusters, stderr:\n%s", refused.Stderr)
	refused.MustCode(t, 2)
	if !strings.Contains(refused.Stderr, "nomap serves no MutatingAdmissionPolicy") || !strings.Contains(refused.Stderr, "--allow-unguarded-clusters") {
		t.Errorf("the refusal does not name the cluster and the flag")
	}
	if c.GetSecret(t, ns, "nomap-token").Labels[legacy.LabelInvalidSince] != "" {
		t.Fatalf("the refused run invalidated the Secret")
	}

	presented := make(chan int, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			cur, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), s.Name, metav1.GetOptions{})
			if err == nil && cur.Labels[legacy.LabelInvalidSince] != "" {
				time.Sleep(time.Second)
				presented <- c.PresentToken(t, cur, "nightly-report/1.0")
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		presented <- 0
	}()
	r := run(t, kubeconfig, append(args, "--allow-unguarded-clusters")...)
	t.Logf("with --allow-unguarded-clusters, stderr:\n%s", r.Stderr)
	if code := <-presented; code != http.StatusUnauthorized {
		t.Fatalf("presented: HTTP %d, want 401", code)
	}
	r.MustCode(t, 1)
	got := c.GetSecret(t, ns, "nomap-token")
	if got.Labels[legacy.LabelInvalidSince] != "" || got.Annotations[legacy.AnnotationRestoredBy] != legacy.RestoredByWatch {
		t.Errorf("the run's guard watch did not restore the presented Secret: labels %v annotations %v", got.Labels, got.Annotations)
	}
	if !strings.Contains(r.Stderr, "nomap had no admission-policy guard; the watch that guarded it ended with this run") {
		t.Errorf("the run does not say its guard watch ended with it")
	}
}
