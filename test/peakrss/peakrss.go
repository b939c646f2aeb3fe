// Package peakrss measures the peak resident set of a child process, for
// the benchmarks that compare the plugin's memory with another program's.
// It imports only the standard library, so that a benchmark measuring a
// re-run of its own test binary does not grow that binary's memory by
// importing it.
package peakrss

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Interval is how often VmHWM is read: growth in a child's last Interval
// before it exits can be missed.
const Interval = 5 * time.Millisecond

// Watch polls /proc/PID/status of a started process for VmHWM until the
// returned function is called (after Wait), which returns the highest
// value seen in bytes, or 0 if the process was gone before the first read.
//
// Why not the rusage wait4 returns: Go starts children with
// clone(CLONE_VM|CLONE_VFORK) (syscall/exec_linux.go, forkAndExecInChild1),
// and at exec Linux folds the high-water RSS of the memory the child
// leaves, the parent's, into the child's maxrss (fs/exec.c, exec_mmap calls
// setmax_mm_hiwater_rss), so ru_maxrss is never below the parent's own
// peak: a benchmark holding a data set would report it as the child's.
// VmHWM belongs to the child's own memory after exec.
func Watch(pid int) (stop func() int64) {
	status := fmt.Sprintf("/proc/%d/status", pid)
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var kb int64
		tick := time.NewTicker(Interval)
		defer tick.Stop()
		for {
			kb = max(kb, VmHWM(status))
			select {
			case <-done:
				peak <- kb * 1024
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-peak
	}
}

// VmHWM returns the VmHWM line of a /proc status file in KiB, 0 once the
// process is gone (a zombie has no memory left to report).
func VmHWM(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("VmHWM:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(line)), " kB"), 10, 64)
	if err != nil {
		return 0
	}
	return kb
}
