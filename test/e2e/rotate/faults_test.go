package rotate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/e2e/faultproxy"
)

// TestRotateAndWaitThroughFaults runs rotate (patch, then wait) through a
// proxy that throttles, fails, resets, slows requests and cuts watches,
// while the simulated operator rolls out on the real apiserver.
func TestRotateAndWaitThroughFaults(t *testing.T) {
	openShift(t, func(o *operator) { o.RaiseDelay = 500 * time.Millisecond; o.StepDelay = 700 * time.Millisecond })
	p, err := faultproxy.Start(cluster, faultproxy.Config{
		Seed: 11, Rate429: 0.05, Rate500: 0.05, Rate503: 0.05, RateResetBefore: 0.03, RateResetAfter: 0.03,
		RateSlow: 0.05, RateWatchClose: 1, WatchMaxLife: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := run(p.Kubeconfig, "rotate", "--issuer", "https://oidc.example.com/faults", "--yes", "--backup", t.TempDir()+"/auth.yaml", "--timeout", "2m", "-o", "json")
	t.Logf("proxy: %s", p.Stats())
	r.must(t, 0)
	var out rotateJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if !out.Rollout.Done || out.Rollout.Revision != 8 || out.Rollout.NodesAtRevision != 3 {
		t.Fatalf("rollout: %+v", out.Rollout)
	}
	if got := currentIssuer(t); got != "https://oidc.example.com/faults" {
		t.Fatalf("spec.serviceAccountIssuer = %q", got)
	}
	// Every watch is cut within a second and the rollout takes longer, so
	// wait must have resumed at least once. (Other faults are random over a
	// dozen requests: usually one or two land; the log shows which.)
	if s := p.Stats(); s.WatchClosed == 0 {
		t.Fatalf("no watch was cut: %s", s)
	}
	// wait alone, through the same proxy, on the finished rollout.
	run(p.Kubeconfig, "wait", "--since-revision", "7", "--timeout", "1m").must(t, 0)
}

// The issuer patch reaches the apiserver but its answer is lost, and every
// retry gets 503: rotate looks, finds the new issuer, and goes on to follow
// the rollout. When the look fails too, it says the change may have gone
// through instead of calling it a plain failure.
func TestRotateWhosePatchAnswerWasLost(t *testing.T) {
	const authPath = "/apis/config.openshift.io/v1/authentications/cluster"
	for _, look := range []bool{true, false} {
		openShift(t, nil)
		var patches atomic.Int64
		p, err := faultproxy.Start(cluster, faultproxy.Config{Logf: t.Logf, Script: func(r *http.Request) faultproxy.Fault {
			switch {
			case r.Method == http.MethodPatch && r.URL.Path == authPath:
				if patches.Add(1) == 1 {
					return faultproxy.ResetAfter
				}
				return faultproxy.Unavailable
			case !look && r.Method == http.MethodGet && r.URL.Path == authPath && patches.Load() > 0:
				return faultproxy.Unavailable
			}
			return faultproxy.NoFault
		}})
		if err != nil {
			t.Fatal(err)
		}
		issuer := fmt.Sprintf("https://oidc.example.com/lost-%v", look)
		r := run(p.Kubeconfig, "rotate", "--issuer", issuer, "--yes", "--backup", t.TempDir()+"/auth.yaml", "--timeout", "1m")
		_ = p.Close()
		if got := currentIssuer(t); got != issuer {
			t.Fatalf("look=%v: the staged patch did not reach the apiserver: issuer %q", look, got)
		}
		if look {
			r.must(t, 0, "kube-apiserver at revision 8 on 3/3 nodes")
		} else {
			r.must(t, 1, "an earlier try may have gone through")
		}
	}
}
