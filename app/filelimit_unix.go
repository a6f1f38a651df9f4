//go:build unix

package app

import (
	"math"
	"syscall"
)

// fileLimit is the process's soft limit of open files (ulimit -n; Go raises
// it to the hard limit at start), or 0 when unknown.
func fileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur, math.MaxInt32))
}
