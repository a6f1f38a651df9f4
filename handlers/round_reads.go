package handlers

import (
	"context"
	"sync"
	"time"

	"github.com/tapwars/tapwars/game"
)

// roundReads shares reads of the current round between concurrent taps
// without weakening what one read per tap guarantees: every caller gets
// the result of a read that STARTED after the caller arrived, so it sees
// any round announced before its tap came in. While a read is under way,
// newcomers wait for the next one, which then serves all of them: under
// load a read serves many taps instead of one round trip each.
type roundReads struct {
	read func(ctx context.Context) (*game.RoundSchedule, int64, error)

	mu      sync.Mutex
	running bool
	next    *roundRead // the read that starts when the running one ends
}

// roundReadTimeout bounds one shared read (then the taps waiting for it
// use the round last read; see currentSchedule).
const roundReadTimeout = 2 * time.Second

// roundRead is one read and the callers waiting for it.
type roundRead struct {
	done  chan struct{}
	sc    *game.RoundSchedule
	round int64
	err   error
}

func newRoundReads(read func(ctx context.Context) (*game.RoundSchedule, int64, error)) *roundReads {
	return &roundReads{read: read}
}

// get returns the round as read by a read that started after get was
// called, or ctx's error.
func (r *roundReads) get(ctx context.Context) (*game.RoundSchedule, int64, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &roundRead{done: make(chan struct{})}
	}
	mine := r.next
	if !r.running {
		r.running = true
		r.next = nil
		go r.run(mine)
	}
	r.mu.Unlock()
	select {
	case <-mine.done:
		return mine.sc, mine.round, mine.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

// run does read rd, then the read its waiters queued meanwhile, until none.
func (r *roundReads) run(rd *roundRead) {
	for rd != nil {
		// Not the callers' contexts: the read serves all of them.
		ctx, cancel := context.WithTimeout(context.Background(), roundReadTimeout)
		rd.sc, rd.round, rd.err = r.read(ctx)
		cancel()
		close(rd.done)
		r.mu.Lock()
		rd = r.next
		r.next = nil
		if rd == nil {
			r.running = false
		}
		r.mu.Unlock()
	}
}
