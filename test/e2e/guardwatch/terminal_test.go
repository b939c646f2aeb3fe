package guardwatch

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bound-token/kubectl-bound-token/test/e2e/framework"
)

// TestInterruptedOnATerminal: the plugin binary, stderr on a terminal and
// no --for, says what it guards, restores, and ends at Ctrl-C (SIGINT)
// with exit 0 and a summary; stdout, not a terminal, has the restore only.
func TestInterruptedOnATerminal(t *testing.T) {
	t.Parallel()
	bin, err := framework.BuildPlugin(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ns := cluster.CreateNamespace(t, "tty")
	s := legacyToken(t, ns, "token")
	cluster.MarkGuarded(t, s, framework.CleanUpMarks())

	master, tty := framework.OpenPTY(t)
	var (
		mu     sync.Mutex
		onTerm bytes.Buffer
	)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			mu.Lock()
			onTerm.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	terminal := func() string { mu.Lock(); defer mu.Unlock(); return strings.ReplaceAll(onTerm.String(), "\r\n", "\n") }

	var stdout bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", cluster.Kubeconfig, "guard", "watch", "-n", ns)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), &stdout, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	cluster.Eventually(t, 30*time.Second, func() (bool, error) {
		return strings.Contains(terminal(), "guarding 1 legacy token Secret invalidated for clean-up in namespace "+ns+"\n"), nil
	})
	if !strings.HasPrefix(terminal(), "guard watch runs until interrupted (Ctrl-C)\n") {
		t.Errorf("terminal:\n%s", terminal())
	}
	healed(t, s)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGINT: %v, want exit 0\nterminal:\n%s", err, terminal())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGINT\nterminal:\n%s", terminal())
	}
	wantRestoreLines(t, framework.Result{Stdout: stdout.String()}, s)
	cluster.Eventually(t, 5*time.Second, func() (bool, error) {
		return strings.Contains(terminal(), ": 1 restored\n"), nil
	})
	if strings.Contains(terminal(), "warning") || strings.Contains(terminal(), "error") {
		t.Errorf("terminal:\n%s", terminal())
	}
	t.Logf("terminal:\n%s", terminal())
}
