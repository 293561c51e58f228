//go:build unix

package projects

import "syscall"

const noFollow = syscall.O_NOFOLLOW
