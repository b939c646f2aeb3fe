//go:build !linux

package framework

import "syscall"

// cleanerProcAttr: without PR_SET_PDEATHSIG, the test's cleanup and
// `hack/local-cluster.sh down` (through the pids file) stop the helper.
func cleanerProcAttr() *syscall.SysProcAttr { return nil }
