package live

import (
	"context"
	"sync/atomic"
	"time"
)

// Pacing: the next frame waits until this one has reached (nearly) every
// client, and then as long again as half that took. With thousands of
// clients on a busy machine, frames come less often instead of queueing
// behind each other, and taps keep their share of the CPU.

// maxDrainWait is the longest a frame waits for its clients: stuck clients
// do not hold the others.
const maxDrainWait = 250 * time.Millisecond

// delivery counts the clients woken for a frame that have handled it:
// drained closes once all but 1% of them (at least one: a single stuck
// client never holds the others) have.
type delivery struct {
	drained  chan struct{} // nil until expect (publish calls it first)
	waiting  atomic.Int64
	straggle int64
}

// expect sets up drained for n woken clients.
func (d *delivery) expect(n int) {
	d.drained = make(chan struct{})
	d.straggle = int64(max(1, n/100))
	d.waiting.Store(int64(n))
	if int64(n) <= d.straggle {
		close(d.drained)
	}
}

// written tells the delivery that a woken client has handled its frame.
func (d *delivery) written() {
	if d.drained != nil && d.waiting.Add(-1) == d.straggle {
		close(d.drained)
	}
}

// gapAfter waits until d drained (at most maxDrainWait, or ctx's end) and
// returns how long the frame took to reach its clients since start, and the
// gap to leave before the next frame: at least min.
func (d *delivery) gapAfter(ctx context.Context, start time.Time, min time.Duration) (took, gap time.Duration) {
	select {
	case <-ctx.Done():
	case <-d.drained:
	case <-time.After(maxDrainWait):
	}
	took = time.Since(start)
	return took, max(min, took+took/2)
}
