package framework

import (
	"bytes"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// This file holds the plugin killed mid-run, for the suites that check a
// second run finishes what a killed one began.

// KillPluginWhen runs the built plugin (PluginBinary) with ARGS against the
// cluster and SIGKILLs it as soon as ready holds (polled every 2 ms). It
// returns whether it killed the run, and the run's stderr; false when the
// run ended before ready held.
func (c *Cluster) KillPluginWhen(t testing.TB, ready func() bool, args ...string) (killed bool, stderr string) {
	t.Helper()
	cmd := exec.Command(c.PluginBinary(t), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case <-exited:
			return false, errOut.String()
		case <-time.After(2 * time.Millisecond):
		}
		if ready() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return true, errOut.String()
		}
	}
}
