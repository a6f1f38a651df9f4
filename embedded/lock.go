package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockWait is how long a start waits for a data directory's lock.
var lockWait = 10 * time.Second

// lockDir takes an exclusive flock on dir/LOCK, so that two processes never
// share a data directory. The kernel drops the lock when the process dies
// (also on kill -9). A process that is still shutting down may hold it for
// a moment: we retry until wait has passed.
func lockDir(dir string, wait time.Duration) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("data directory %s is in use by another process (lock %s held for more than %s)", dir, path, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func unlockDir(f *os.File) {
	if f == nil {
		return
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
