package framework

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// This file runs the real Argo Rollouts controller (argo-rollouts
// cmd/rollouts-controller, built by hack/build-rollouts-controller.sh at
// the version hack/rollouts-controller/go.mod pins) against the cluster,
// so that a Rollout is rolled out as on a real cluster: ReplicaSets
// created and scaled, status.phase and status.observedGeneration
// written, pods run on the kwok nodes (Options.Workloads).

// RolloutsCRDs are the CRDs Argo Rollouts' install applies
// (manifests/crds/kustomization.yaml of the pinned module, whose
// resources are these five files; TestRolloutsCRDsAreTheInstalledOnes
// checks the list against it). The controller needs all of them: it
// waits for the informer caches of rollouts, experiments, analysisruns,
// analysistemplates and, cluster-wide, clusteranalysistemplates before it
// starts a worker (controller/controller.go, Manager.startLeading).
var RolloutsCRDs = []string{
	"rollouts.argoproj.io",
	"experiments.argoproj.io",
	"analysisruns.argoproj.io",
	"analysistemplates.argoproj.io",
	"clusteranalysistemplates.argoproj.io",
}

// RolloutsController is a running rollouts-controller.
type RolloutsController struct {
	// Log is its log (logrus text, stdout and stderr), in the cluster's
	// folder.
	Log string
	// HealthzPort and MetricsPort are the ports it serves /healthz and
	// /metrics on (on every interface: it listens on 0.0.0.0:PORT,
	// controller/controller.go listenAddr, with no flag for the address).
	HealthzPort, MetricsPort int

	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's answer, set before done is closed
	// stopping is set once Stop began, so an exit it caused is not
	// reported as a crash.
	mu       sync.Mutex
	stopping bool
}

// rolloutsControllers holds the cluster's running controller: two at once
// would both reconcile every Rollout (it runs without leader election).
var rolloutsControllers sync.Map // *Cluster -> *RolloutsController

// rolloutsReadyLine is what the controller logs once every informer cache
// synced and the workers started (controller/controller.go,
// Manager.startLeading, log.Info("Started controller")), in logrus' text
// format.
const rolloutsReadyLine = `msg="Started controller"`

// rolloutsStartBudget bounds the start: the CRD informers list and sync
// within seconds on the local cluster.
const rolloutsStartBudget = 90 * time.Second

// RolloutsControllerBinary is the path of the cached rollouts-controller,
// built by hack/build-rollouts-controller.sh when missing (about 4 minutes
// on 2 cores from a cold module and build cache; `make e2e` builds it
// first).
func RolloutsControllerBinary() (string, error) {
	repo, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(repo, "hack", "build-rollouts-controller.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/build-rollouts-controller.sh: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// StartRolloutsController installs Argo Rollouts' CRDs (RolloutsCRDs, the
// published manifests through InstallCRD, kept when the test ends),
// builds the controller if it is missing, runs it against the cluster
// with the admin kubeconfig, without leader election, watching every
// namespace, and waits until it says it started its workers and answers
// on /healthz. Its log goes to logs/rollouts-controller-N.log in the
// cluster's folder.
//
// It is stopped (SIGTERM, then SIGKILL after 10 s) when the test ends, and
// dies with the test process (PR_SET_PDEATHSIG) or with the cluster (its
// pid is in the cluster's pids file, which `hack/local-cluster.sh down`
// stops). The test fails, with the tail of the log, if it exits before it
// is ready, and at the end if it exited on its own meanwhile. One runs per
// cluster at a time: a second start while one runs fails the test.
func (c *Cluster) StartRolloutsController(t testing.TB) *RolloutsController {
	t.Helper()
	crdStart := time.Now()
	for _, name := range RolloutsCRDs {
		c.InstallCRD(t, name, false)
	}
	crdTook := time.Since(crdStart)
	bin, err := RolloutsControllerBinary()
	if err != nil {
		t.Fatal(err)
	}
	rc := &RolloutsController{done: make(chan struct{})}
	if prev, loaded := rolloutsControllers.LoadOrStore(c, rc); loaded {
		t.Fatalf("a rollouts-controller already runs on this cluster (log %s): stop it first", prev.(*RolloutsController).Log)
	}
	defer func() {
		// Started nothing (a t.Fatal below): free the slot.
		if rc.cmd == nil {
			rolloutsControllers.Delete(c)
		}
	}()
	if rc.HealthzPort, err = freePort(); err != nil {
		t.Fatal(err)
	}
	if rc.MetricsPort, err = freePort(); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	rc.Log = filepath.Join(logs, fmt.Sprintf("rollouts-controller-%d.log", rolloutsRuns.Add(1)))
	logFile, err := os.Create(rc.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// Flags: cmd/rollouts-controller/main.go, newCommand. --kubeconfig
	// carries the cluster's folder in the command line, which is how
	// `hack/local-cluster.sh down` recognises the pid as the cluster's.
	cmd := exec.Command(bin,
		"--kubeconfig", c.Kubeconfig,
		// Its default is true (controller/controller.go,
		// DefaultLeaderElect): it would then first take a Lease in its
		// own namespace (NewLeaderElectionOptions: defaults.Namespace(),
		// argo-rollouts out of a pod, which does not exist here), and a
		// second controller would wait instead of fighting the first.
		"--leader-elect=false",
		// Its defaults, 8080 and 8090, may be taken on a shared machine;
		// a failed listen is only logged (Manager.Run), so free ones are
		// picked and /healthz is checked below.
		fmt.Sprintf("--healthzPort=%d", rc.HealthzPort),
		fmt.Sprintf("--metricsPort=%d", rc.MetricsPort),
		"--logformat=text", "--loglevel=info",
	)
	// Its working folder is where it would download plugins to
	// (utils/defaults DefaultRolloutPluginFolder, relative): none are
	// configured, but nothing it writes should land in the package folder.
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = cleanerProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc.cmd = cmd
	go func() { rc.err = cmd.Wait(); close(rc.done) }()
	if f, err := os.OpenFile(filepath.Join(c.Dir, "pids"), os.O_APPEND|os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
	}
	t.Cleanup(func() {
		if exited := rc.Stop(); exited != nil {
			t.Errorf("rollouts-controller exited during the test (%v); its log %s ends:\n%s", exited, rc.Log, tail(rc.Log, 30))
		}
		rolloutsControllers.Delete(c)
	})

	start := time.Now()
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", rc.HealthzPort)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-rc.done:
			rc.Stop() // reported here, not again by the cleanup
			t.Fatalf("rollouts-controller exited before it was ready (%v); its log %s ends:\n%s", rc.err, rc.Log, tail(rc.Log, 30))
		default:
		}
		b, _ := os.ReadFile(rc.Log)
		started := bytes.Contains(b, []byte(rolloutsReadyLine))
		ok, why := false, "not tried: the controller has not logged "+rolloutsReadyLine
		if started {
			ok, why = httpOK(client, healthz)
		}
		if ok {
			break
		}
		if time.Since(start) > rolloutsStartBudget {
			t.Fatalf("rollouts-controller not ready within %s (GET %s: %s); its log %s ends:\n%s", rolloutsStartBudget, healthz, why, rc.Log, tail(rc.Log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rollouts-controller: %d CRDs served in %s, controller ready %s after its start (log %s)",
		len(RolloutsCRDs), crdTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), rc.Log)
	return rc
}

var rolloutsRuns atomic.Int64

// Running says the controller has not exited.
func (rc *RolloutsController) Running() bool {
	select {
	case <-rc.done:
		return false
	default:
		return true
	}
}

// Stop ends the controller (SIGTERM, then SIGKILL after 10 s) and waits
// for it. It returns the exit of a controller that ended on its own before
// Stop was first called (a crash), else nil. Calling it twice is harmless.
func (rc *RolloutsController) Stop() error {
	rc.mu.Lock()
	first := !rc.stopping
	rc.stopping = true
	rc.mu.Unlock()
	select {
	case <-rc.done:
		if first {
			if rc.err == nil {
				return fmt.Errorf("exit status 0")
			}
			return rc.err
		}
		return nil
	default:
	}
	_ = rc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rc.done:
	case <-time.After(10 * time.Second):
		_ = rc.cmd.Process.Kill()
		<-rc.done
	}
	return nil
}

// freePort is a TCP port nothing listens on, on any interface (the
// controller listens on 0.0.0.0); another process may still take it
// before the controller does, which the /healthz check then reports.
func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// httpOK GETs url and says whether it answered 200 "ok"
// (controller/healthz.go, healthzHandler).
func httpOK(client *http.Client, url string) (bool, string) {
	resp, err := client.Get(url)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		return false, fmt.Sprintf("HTTP %d %q", resp.StatusCode, b)
	}
	return true, ""
}

// RolloutsGVR is the Rollout resource (argoproj.io/v1alpha1).
var RolloutsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// RolloutPhase is the phase and message of a Rollout by argo-rollouts' own
// rule (utils/rollout/rolloututil.go, GetRolloutPhase): Progressing while
// status.observedGeneration (a string) is not metadata.generation, or
// while it is unpausing (IsUnpausing: status.controllerPause with no
// status.pauseConditions); then status.phase and status.message, which
// the controller computes. Stricter than upstream in two places that only
// serve controllers before v1.0, so that a Rollout no controller has seen
// is never Healthy: a missing or non-numeric observedGeneration (upstream
// isGenerationObserved takes it for a v0.9 hash and counts it as observed)
// is not observed, and an empty status.phase is "" (upstream then falls
// back to CalculateRolloutPhase, a client-side estimate). Rollouts with
// spec.workloadRef (TemplateResolvedFromRef) are not handled.
func RolloutPhase(ro *unstructured.Unstructured) (phase, message string) {
	observed, _, _ := unstructured.NestedString(ro.Object, "status", "observedGeneration")
	if observed != strconv.FormatInt(ro.GetGeneration(), 10) {
		return "Progressing", fmt.Sprintf("waiting for rollout spec update to be observed (observedGeneration %q, generation %d)", observed, ro.GetGeneration())
	}
	controllerPause, _, _ := unstructured.NestedBool(ro.Object, "status", "controllerPause")
	conds, _, _ := unstructured.NestedSlice(ro.Object, "status", "pauseConditions")
	if controllerPause && len(conds) == 0 {
		return "Progressing", "waiting for rollout to unpause"
	}
	phase, _, _ = unstructured.NestedString(ro.Object, "status", "phase")
	message, _, _ = unstructured.NestedString(ro.Object, "status", "message")
	return phase, message
}

// WaitRolloutHealthy waits until the Rollout ns/name is Healthy
// (RolloutPhase) and returns it; it fails the test with the last phase and
// message when timeout passes first. Only a controller makes a Rollout
// Healthy: start one first (StartRolloutsController).
func (c *Cluster) WaitRolloutHealthy(t testing.TB, ns, name string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	var ro *unstructured.Unstructured
	c.Eventually(t, timeout, func() (bool, error) {
		got, err := dyn.Resource(RolloutsGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ro = got
		phase, msg := RolloutPhase(got)
		if phase != "Healthy" {
			return false, fmt.Errorf("rollout %s/%s at generation %d is %q: %s", ns, name, got.GetGeneration(), phase, msg)
		}
		return true, nil
	})
	return ro
}
