//go:build faulthooks

package gateway

import (
	"os"
	"strconv"
	"syscall"
)

// afterSend kills the process, as kill -9 would, once a job's gateway has sent
// DEPLOYER_FAULT_KILL_AFTER_SENDS transactions. Built only with -tags faulthooks.
func afterSend(n int) {
	if want, err := strconv.Atoi(os.Getenv("DEPLOYER_FAULT_KILL_AFTER_SENDS")); err == nil && n == want {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
