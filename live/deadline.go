package live

import (
	"net"
	"sync"
	"time"
)

// WriteDeadline sets a connection's write deadline before each write, but
// only calls SetWriteDeadline (a runtime timer update per call, the most
// a frame costs after the write itself with thousands of clients) when the
// deadline set last is later than asked, or earlier than asked by more than
// a quarter of the time left: every write still gets at least ¾ of its
// timeout, and a shorter deadline (a goodbye, a close) always takes effect.
// Every deadline of the connection must go through it.
type WriteDeadline struct {
	mu   sync.Mutex
	last int64 // unix ns of the deadline set last; 0: none
}

// Set makes deadline (nearly) nc's write deadline.
func (d *WriteDeadline) Set(nc net.Conn, deadline time.Time) {
	want := deadline.UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last != 0 && d.last <= want && want-d.last < int64(time.Until(deadline))/4 {
		return
	}
	_ = nc.SetWriteDeadline(deadline)
	d.last = want
}
