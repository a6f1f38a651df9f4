package embedded

// abandon simulates a crash for tests: it stops serving and drops the log
// and the lock without any fsync, snapshot or final write. What was written
// is in the page cache, as after a kill -9.
func (d *durable) abandon() {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	d.m.Close()
	close(d.stop)
	d.wg.Wait()
	d.mu.Lock()
	d.closed = true
	d.aof.Close()
	d.mu.Unlock()
	unlockDir(d.lockFile)
}
