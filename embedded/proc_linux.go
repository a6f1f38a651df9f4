package embedded

import "syscall"

// childAttr: Pdeathsig kills the child when the thread that started it
// dies, i.e. with our process (also on kill -9). Setpgid keeps a Ctrl-C on
// the terminal from reaching redis-server before we send SHUTDOWN.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
