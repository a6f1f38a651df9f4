package live

// The hub's loop: when to read the state, when to send personal updates,
// and how long to wait for the clients between frames (pacing.go).

import (
	"context"
	"time"

	"github.com/tapwars/tapwars/metrics"
)

// Run follows the store's change notifications until ctx ends, producing at
// most one frame per MinInterval (changes in between are coalesced).
func (h *Hub) Run(ctx context.Context) {
	changes := h.src.Subscribe(ctx)
	touch := time.NewTicker(h.opt.TouchInterval)
	defer touch.Stop()
	// Presence expires without any change being published: re-read when
	// no frame was made for IdleRefresh (under load frames read anyway).
	idle := time.NewTicker(h.opt.IdleRefresh)
	defer idle.Stop()
	l := &loop{h: h, stats: cadence{every: h.opt.StatsInterval},
		retry: stoppedTimer(), board: stoppedTimer(), statsDue: stoppedTimer()}
	defer l.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-l.retry.C:
		case <-l.board.C:
		case <-idle.C:
			if err := h.refresh(ctx, true); err != nil && ctx.Err() == nil {
				h.log.Warn("live update failed", "err", err)
			}
			continue
		case <-touch.C:
			h.touchAll(ctx)
			continue
		case <-l.statsDue.C:
			signal(l.personal(ctx))
			continue
		}
		if !l.frame(ctx) {
			return
		}
		idle.Reset(h.opt.IdleRefresh)
	}
}

// loop is what Run keeps between frames.
type loop struct {
	h     *Hub
	retry *time.Timer // a failed read is tried again
	board *time.Timer // a held-back leaderboard change falls due
	// Personal updates come at most once per StatsInterval; one that falls
	// due sooner is sent when the interval is over, never dropped.
	stats    cadence
	statsDue *time.Timer
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (l *loop) stop() { l.retry.Stop(); l.board.Stop(); l.statsDue.Stop() }

// personal stores the personal updates that changed and returns their
// clients, for a frame's wake or signal to write them.
func (l *loop) personal(ctx context.Context) []*Client {
	l.stats.ran(time.Now())
	cs, err := l.h.refreshStats(ctx)
	if err != nil {
		l.h.log.Warn("live personal update failed", "err", err)
	}
	return cs
}

func signal(cs []*Client) {
	for _, c := range cs {
		c.signal()
	}
}

// frame reads the state, publishes a frame (with the personal updates that
// are due), sets the timers, and waits as pacing says. It reports false
// when ctx ended.
func (l *loop) frame(ctx context.Context) bool {
	h := l.h
	start := time.Now()
	// Personal updates that are due go out with the frame: stored first,
	// they are written with it, in one write call.
	var staged []*Client
	statsNow := l.stats.due(start)
	if statsNow {
		staged = l.personal(ctx)
	}
	before := h.Latest()
	err := h.Refresh(ctx)
	if h.Latest() == before { // no frame woke them (a failed or held-back read)
		signal(staged)
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		h.log.Warn("live update failed", "err", err)
		l.retry.Reset(time.Second)
	} else {
		if due := h.boardDue.Load(); due != 0 {
			l.board.Reset(time.Until(time.Unix(0, due)))
		}
		if !statsNow {
			l.statsDue.Reset(l.stats.wait(time.Now()))
		}
	}
	// Pace to the clients.
	gap := h.opt.MinInterval
	if f := h.Latest(); f != nil {
		var took time.Duration
		took, gap = f.gapAfter(ctx, start, gap)
		if ctx.Err() != nil {
			return false
		}
		metrics.BroadcastSeconds.Observe(took.Seconds())
	}
	h.gap.Store(int64(gap))
	select {
	case <-ctx.Done():
		return false
	case <-time.After(gap - time.Since(start)):
	}
	return true
}
