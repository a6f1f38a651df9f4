//go:build unix && !linux

package embedded

import "syscall"

// childAttr: without Pdeathsig (Linux only) a redis-server whose parent was
// kill -9'ed keeps running; the next start stops it (see stopStale, which
// needs /proc and so only works on Linux). Setpgid keeps a Ctrl-C on the
// terminal from reaching redis-server before we send SHUTDOWN.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
