package localredis

import "syscall"

// sysProcAttr ties redis-server to its parent: the kernel kills it when the thread
// that started it exits, which a kill -9 of the deployer does. Its own process group
// keeps a terminal's Ctrl-C away from it: the deployer drains first, writing to
// Redis, and stops it last.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
