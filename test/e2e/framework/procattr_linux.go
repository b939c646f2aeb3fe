package framework

import "syscall"

// cleanerProcAttr makes the kernel kill a helper process if the test
// process dies without running its cleanups (PR_SET_PDEATHSIG).
func cleanerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
