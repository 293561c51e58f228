//go:build unix && !linux

package localredis

import "syscall"

// sysProcAttr keeps a terminal's Ctrl-C away from redis-server: the deployer drains
// first, writing to Redis, and stops it last. Without Linux's parent-death signal, a
// redis-server whose deployer was killed keeps running until the next start replaces
// it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
