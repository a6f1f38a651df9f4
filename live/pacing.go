package live

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Pacing: the rules that space frames, leaderboard changes and personal
// updates out in time. The next frame waits until this one has reached (nearly) every
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
	return took, nextGap(took, min)
}

// nextGap is the time between a frame's start and the next one's, when the
// frame took took to reach its clients: as long again as half that, and at
// least min.
func nextGap(took, min time.Duration) time.Duration { return max(min, took+took/2) }

// boardHold is how long the pages keep a leaderboard before showing a
// change: every, or three frames when pacing spaces frames gap apart.
func boardHold(every, gap time.Duration) time.Duration { return max(every, 3*gap) }

// shownBoard is the leaderboard the pages show, and since when.
type shownBoard struct {
	entries []game.LeaderboardEntry
	since   time.Time
}

// next is what the pages show when the state's leaderboard is lb at now: a
// change shows once the one shown is hold old; until then it is held back,
// and due is when it falls due (zero: nothing held back).
func (b shownBoard) next(lb []game.LeaderboardEntry, now time.Time, hold time.Duration) (shown shownBoard, due time.Time) {
	switch {
	case slices.Equal(b.entries, lb):
		return b, time.Time{}
	case now.Sub(b.since) < hold:
		return b, b.since.Add(hold)
	}
	return shownBoard{lb, now}, time.Time{}
}

// cadence spaces an action out to at most once per every.
type cadence struct {
	every time.Duration
	last  time.Time // the last run; zero: never
}

// due reports whether the action may run at now.
func (c *cadence) due(now time.Time) bool { return now.Sub(c.last) >= c.every }

// ran records that the action ran at now.
func (c *cadence) ran(now time.Time) { c.last = now }

// wait is how long after now the action falls due (≤ 0: it is).
func (c *cadence) wait(now time.Time) time.Duration { return c.every - now.Sub(c.last) }
