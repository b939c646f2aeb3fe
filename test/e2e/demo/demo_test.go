// Package demo runs `make demo` (hack/demo.sh) to its end on its own local
// control plane, so that the demo cannot rot: every step must exit as the
// demo expects (the script stops otherwise) and show what its line says.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

func TestDemoRunsToItsEnd(t *testing.T) {
	repo, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	plugin, err := framework.BuildPlugin(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "hack", "demo.sh"))
	// Its own cluster name, so a `make demo` running meanwhile is not
	// touched; SIGTERM on timeout lets the script's trap stop the cluster.
	cmd.Env = append(os.Environ(), "PLUGIN="+plugin, fmt.Sprintf("DEMO_CLUSTER=demo-e2e-%d", os.Getpid()), "KEEP_CLUSTER=")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("hack/demo.sh took %s", time.Since(start).Round(time.Second))
	text := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out.String(), "")
	if err != nil {
		t.Fatalf("hack/demo.sh: %v\n%s", err, text)
	}
	// The script's last line, and its cluster stopped after it.
	done := strings.Index(text, "\ndemo done.\n")
	if done < 0 || !strings.HasSuffix(strings.TrimSpace(text), "\nlocal-cluster[demo-e2e-"+fmt.Sprint(os.Getpid())+"]: stopped") {
		t.Fatalf("the demo did not end with 'demo done.' and its cluster stopped:\n%s", text)
	}
	if testing.Verbose() {
		t.Log(text)
	}
	checkSteps(t, text)
}

// checkSteps checks that each step the demo names exited as expected and
// showed what its line says.
func checkSteps(t testing.TB, text string) {
	t.Helper()
	steps := parseSteps(text)
	yearAgo := time.Now().UTC().AddDate(0, 0, -365).Format(framework.DayFormat)
	for _, c := range []struct {
		step string // the start of the step's line
		exit int
		want []string // regular expressions, each must match the step's output
	}{
		{"verify: signature against", 0, []string{`(?m)^VERIFIED: RS256`}},
		{"verify: the wrong audience is rejected", 1, []string{`(?m)^REJECTED`}},
		{"a year of tracking", 0, []string{`legacy token use tracked since ` + yearAgo, `secret shop/old-job-token created `}},
		{"an outside client", 0, []string{`Username\s+system:serviceaccount:shop:ci-bot`, `ci-bot-token\s.*\s2y\s+\d{4}-\d\d-\d\d`}},
		{"migrate: the audit", 0, []string{
			`(?m)^shop\s+ci-bot-token\s.*\sused\s+the audit log shows 1 request`,
			`(?m)^shop\s+old-job-token\s.*\sinvalidate\s+no use recorded since tracking began on ` + yearAgo,
			`(?m)^shop\s+web-token\s.*deployment/web \(volume\)\s+switch-workload\s`,
			`CLEANER-INVALIDATES\s+CLEANER-DELETES`,
			`3 legacy token Secrets: 1 invalidate, 1 switch-workload, 1 used`,
		}},
		{"switch: the plan", 0, []string{`deployment/web -n shop: switchable \(reads web-token\)`, `(?m)^\+\s+- serviceAccountToken:`, `Nothing was changed`}},
		{"switch --apply", 0, []string{`(?m)^shop\s+deployment/web\s+switched\s+rolled out`, `Read by nothing now in shop: web-token\.`}},
		{"guard install", 0, []string{`mutatingadmissionpolicy.admissionregistration.k8s.io/bound-token-guard created`, `the guard acts`}},
		{"migrate --apply", 0, []string{
			`(?m)^shop\s+ci-bot-token\s+skipped-used\s`,
			`(?m)^shop\s+old-job-token\s+invalidated\s+guarded until`,
			`(?m)^shop\s+web-token\s+invalidated\s+guarded until`,
			`summary: 1 skipped-used, 2 invalidated`,
		}},
		{"a yearly job the evidence missed", 1, []string{`(?m)^error: You must be logged in to the server \(Unauthorized\)`}},
		{"the job's next request is accepted", 0, []string{`Username\s+system:serviceaccount:shop:old-job`, `(?m)^restored on \d{4}-\d{2}-\d{2} by admission-policy$`}},
		{"migrate: the audit says restored-on-use", 0, []string{`(?m)^shop\s+old-job-token\s.*\srestored-on-use\s`, `(?m)^shop\s+web-token\s.*\swait\s`}},
		{"restore:", 0, []string{`(?m)^shop\s+old-job-token\s+re-enabled`, `(?m)^shop\s+web-token\s+re-enabled`}},
		{"web's old token is accepted again", 0, []string{`Username\s+system:serviceaccount:shop:web`}},
		{"rotate:", 0, []string{`new issuer:\s+https://oidc.example.com/demo`, `kube-apiserver at revision 8 on 3/3 nodes`, `issuer https://oidc.example.com/demo active`}},
		{"wait:", 0, []string{`kube-apiserver at revision 8 on 3/3 nodes`}},
		{"stop the simulated operator", 0, []string{`stopped after 1 rollout\(s\), every status write accepted`}},
	} {
		body, ok := steps.find(c.step)
		if !ok {
			t.Errorf("no step %q in the demo:\n%s", c.step, text)
			continue
		}
		if !strings.HasSuffix(strings.TrimSpace(body), fmt.Sprintf("exit=%d", c.exit)) {
			t.Errorf("step %q does not end with exit=%d:\n%s", c.step, c.exit, body)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(w).MatchString(body) {
				t.Errorf("step %q does not show %s:\n%s", c.step, w, body)
			}
		}
	}
}

// steps maps each step's line (after "== ") to what follows it, up to the
// next step, section or the demo's end.
type steps []struct{ title, body string }

func parseSteps(text string) steps {
	var s steps
	for _, chunk := range strings.Split(text, "\n== ")[1:] {
		title, body, _ := strings.Cut(chunk, "\n")
		body, _, _ = strings.Cut(body, "\n### ")
		body, _, _ = strings.Cut(body, "\ndemo done.")
		s = append(s, struct{ title, body string }{title, body})
	}
	return s
}

func (s steps) find(prefix string) (string, bool) {
	for _, st := range s {
		if strings.HasPrefix(st.title, prefix) {
			return st.body, true
		}
	}
	return "", false
}
