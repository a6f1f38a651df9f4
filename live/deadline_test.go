package live

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.set = append(c.set, t)
	return nil
}

func TestWriteDeadline(t *testing.T) {
	now := time.Now()
	var d WriteDeadline
	nc := &deadlineConn{}
	for _, step := range []struct {
		deadline time.Duration // from now
		set      bool
	}{
		{10 * time.Second, true},                       // the first one
		{10*time.Second + time.Millisecond, false},     // the next write's: nearly the same
		{12 * time.Second, false},                      // 2 s later, under a quarter of the 12 s left
		{20 * time.Second, true},                       // 10 s later: over a quarter of the 20 s left
		{time.Second, true},                            // shorter (a goodbye): always
		{time.Second + 400*time.Millisecond, true},     // 400 ms later, over a quarter of the 1.4 s left
		{time.Second + 450*time.Millisecond, false},    // 50 ms later
		{time.Second + 450*time.Millisecond, false},    // the same
		{time.Second + 400*time.Millisecond - 1, true}, // 1 ns before the one set last
	} {
		n := len(nc.set)
		d.Set(nc, now.Add(step.deadline))
		if got := len(nc.set) > n; got != step.set {
			t.Fatalf("deadline in %v: set %v, want %v (set so far: %d)", step.deadline, got, step.set, len(nc.set))
		}
		if step.set && !nc.set[len(nc.set)-1].Equal(now.Add(step.deadline)) {
			t.Fatalf("deadline in %v: set %v", step.deadline, nc.set[len(nc.set)-1])
		}
	}
}
