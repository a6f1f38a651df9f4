package live

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// writeCounter is a connection that records each write call and write
// deadline.
type writeCounter struct {
	deadlineConn
	writes [][]byte
	err    error
}

func (w *writeCounter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// While held, flushes collect; the last release writes them in one call.
// Unheld writes go straight through, and a failed write fails every later one.
func TestHeldWritesGoOutTogether(t *testing.T) {
	nc := &writeCounter{}
	h := &heldWrites{nc: nc, timeout: time.Minute}
	if _, err := h.Write([]byte("a")); err != nil || len(nc.writes) != 1 {
		t.Fatalf("unheld write: %v, %d calls", err, len(nc.writes))
	}
	if len(nc.set) != 1 || time.Until(nc.set[0]) < 59*time.Second {
		t.Fatalf("write deadlines %v, want one a minute from now", nc.set)
	}
	h.hold()
	h.hold() // a second writer holds too: only the last release writes
	_, _ = h.Write([]byte("frame,"))
	_, _ = h.Write([]byte("personal"))
	if err := h.release(); err != nil || len(nc.writes) != 1 {
		t.Fatalf("first release: %v, %d calls", err, len(nc.writes))
	}
	_, _ = h.Write([]byte(",ack"))
	if err := h.release(); err != nil || len(nc.writes) != 2 || string(nc.writes[1]) != "frame,personal,ack" {
		t.Fatalf("last release: %v, writes %q", err, nc.writes)
	}

	nc.err = errors.New("connection reset")
	h.hold()
	_, _ = h.Write([]byte("lost"))
	if err := h.release(); err == nil {
		t.Fatal("a failed write was not reported")
	}
	nc.err = nil
	if _, err := h.Write([]byte("after")); err == nil || len(nc.writes) != 2 {
		t.Fatalf("a write after a failure: %v, %d calls", err, len(nc.writes))
	}
}
