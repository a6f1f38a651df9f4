package ledger

// The tap path judges a tap by this instance's view of the current round,
// held in memory, and reads nothing from Redis for it. A view is kept
// fresh by a heartbeat (every RoundView.Every, and at once when any
// instance publishes a change of round) and is trusted only while it is
// confirmed: until Lease−Margin after the last heartbeat that reached Redis.
// Past that, taps get 503 rather than a guess.
//
// A tap counts exactly when it got 2xx because of how a timed round starts:
//
//  1. The round is announced (store.AnnounceRound): every instance switches
//     to it and refuses taps until it has started;
//  2. each instance records that it switched (store.RoundHeartbeat's seen,
//     a stamp: view.stamp) only after every tap it judged by its older view
//     was answered, so those taps are in the log before anything that
//     follows;
//  3. the announcer waits until every registered instance has switched, or
//     its registration has ended (store.RoundUnseen), and only then logs
//     the round's markers and starts it (Game.StartTimedRound).
//
// So no tap answered 2xx under an older view lands after a marker of the
// new round, and none judged by the new round lands before one. An
// instance cut off from Redis has its registration end Lease after its last
// heartbeat; it stopped answering 2xx Margin before that. Open rounds need
// no announcement: every tap counts in one open round or the next.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

// Defaults of RoundView's timings.
const (
	DefaultRoundLease  = 6 * time.Second
	DefaultRoundMargin = 1500 * time.Millisecond
	DefaultRoundEvery  = 250 * time.Millisecond
)

// errRoundUnconfirmed refuses a tap while the view cannot be confirmed.
var errRoundUnconfirmed = game.Errorf(game.EUNAVAILABLE, "the current round cannot be confirmed (the game state is unreachable); try again in a moment")

// RoundView is this instance's view of the current round (see above).
type RoundView struct {
	st  *store.Store
	ID  string // this instance in the registry of views
	Log *slog.Logger
	// Lease is how long a heartbeat keeps the instance registered; taps
	// are judged by the view until Lease−Margin after the last one that
	// reached Redis. Every is the heartbeat's interval.
	Lease, Margin, Every time.Duration

	base     time.Time // the monotonic origin of deadline
	cur      atomic.Pointer[view]
	deadline atomic.Int64               // ns since base: taps are answered 2xx before it
	seen     atomic.Pointer[store.Seen] // the view every older one drained to
	wake     chan struct{}
	// kicked reloads the kicked players (the handlers' set) when the kick
	// epoch changed, before taps are judged by the new view.
	kicked atomic.Pointer[func(context.Context) error]

	mu       sync.Mutex
	draining []*view // replaced views with taps still unanswered, oldest first
}

// view is one state of the current round: round started, and sc its
// schedule (nil: open play; numbered after round: announced, not started).
type view struct {
	round    int64
	sc       *game.RoundSchedule
	kicks    int64        // the kick epoch whose kicked players are refused
	inflight atomic.Int64 // taps judged by this view and not answered yet
}

// stamp orders views: 2n for round n announced and not started, 2n+1
// once started. Instances record the stamp they switched to (seen).
func (v *view) stamp() int64 {
	if v.sc != nil && v.sc.Number > v.round {
		return Announced(v.sc.Number)
	}
	return Started(v.round)
}

// Announced and Started are the stamps of a view of round n announced, and
// started (see view.stamp).
func Announced(n int64) int64 { return 2 * n }
func Started(n int64) int64   { return 2*n + 1 }

func (v *view) same(w store.ViewState) bool {
	return v.round == w.Round && v.kicks == w.Kicks && (v.sc == w.Schedule || v.sc != nil && w.Schedule != nil && *v.sc == *w.Schedule)
}

// seen is what the instance records once it switched to v.
func (v *view) seen() store.Seen { return store.Seen{Stamp: v.stamp(), Kicks: v.kicks} }

// NewRoundView returns the view of st's current round, with a new id.
func NewRoundView(st *store.Store, log *slog.Logger) *RoundView {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &RoundView{st: st, ID: hex.EncodeToString(b[:]), Log: log,
		Lease: DefaultRoundLease, Margin: DefaultRoundMargin, Every: DefaultRoundEvery,
		base: time.Now(), wake: make(chan struct{}, 1)}
}

func (r *RoundView) now() int64 { return int64(time.Since(r.base)) }

// RoundHold is the round one tap is judged by, held until the tap is
// answered (Done).
type RoundHold struct {
	// Schedule is the round's schedule (nil: open play); Round the round
	// started. A timed Schedule numbered after Round is announced and not
	// started: taps are refused until it starts.
	Schedule *game.RoundSchedule
	Round    int64
	r        *RoundView
	v        *view
}

// Hold returns the round a tap arriving now is judged by, or a 503 error
// while the view is not confirmed.
func (r *RoundView) Hold() (RoundHold, error) {
	for {
		v := r.cur.Load()
		if v == nil || r.now() >= r.deadline.Load() {
			return RoundHold{}, errRoundUnconfirmed
		}
		v.inflight.Add(1)
		// Counted before the view was replaced, or seen replaced: a
		// replaced view's count only falls (see drain).
		if r.cur.Load() == v {
			return RoundHold{Schedule: v.sc, Round: v.round, r: r, v: v}, nil
		}
		v.inflight.Add(-1)
	}
}

// Done releases the hold of a tap Kafka acknowledged or refused, and
// reports whether an acknowledgement now may be answered 2xx: the instance
// is still registered, so no announcement has gone past it. A hold made
// of its exported fields alone (no view behind it) is always confirmed.
func (h RoundHold) Done() bool {
	if h.v == nil {
		return true
	}
	ok := h.r.now() < h.r.deadline.Load()
	h.v.inflight.Add(-1)
	return ok
}

// Current reports whether the held round is still this instance's
// confirmed view: a tap answered "may still count" and acknowledged later
// counts in it only then.
func (h RoundHold) Current() bool {
	return h.v == nil || h.r.cur.Load() == h.v && h.r.now() < h.r.deadline.Load()
}

// OnKicks sets what reloads the kicked players when a kick is announced:
// taps are judged by the new view only after it returned nil.
func (r *RoundView) OnKicks(reload func(context.Context) error) { r.kicked.Store(&reload) }

// Run keeps the view fresh until ctx ends, then leaves the registry.
func (r *RoundView) Run(ctx context.Context) {
	changes := r.st.SubscribeRounds(ctx)
	t := time.NewTicker(r.Every)
	defer t.Stop()
	failing := false
	for {
		err := r.Heartbeat(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			r.Log.Warn("round view: cannot reach the game state; taps are refused once the view is older than the lease", "err", err, "lease", r.Lease-r.Margin)
			failing = true
		case err == nil && failing:
			r.Log.Info("round view: confirmed again")
			failing = false
		}
		select {
		case <-ctx.Done():
			r.deadline.Store(0) // a tap still waiting for Kafka may still count
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = r.st.LeaveRounds(lctx, r.ID)
			cancel()
			return
		case <-changes:
		case <-r.wake:
		case <-t.C:
		}
	}
}

// Heartbeat registers the instance, reads the current round and the kick
// epoch, and switches the view if they changed.
func (r *RoundView) Heartbeat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.Lease-r.Margin)
	defer cancel()
	sent := r.now()
	seen := store.Seen{}
	if p := r.seen.Load(); p != nil {
		seen = *p
	}
	w, err := r.st.RoundHeartbeat(ctx, r.ID, r.Lease, seen)
	if err != nil {
		return err
	}
	old := r.cur.Load()
	if old != nil && w.Round < old.round {
		// The projection is behind this view (Redis lost its data and is
		// rebuilt from the log): rounds only move forward in the log.
		w.Round, w.Schedule = old.round, old.sc
	}
	if old != nil && w.Kicks != old.kicks {
		if reload := r.kicked.Load(); reload != nil {
			if err := (*reload)(ctx); err != nil {
				r.Log.Warn("round view: could not reload the kicked players; will retry", "err", err)
				w.Kicks = old.kicks
			}
		}
	}
	switch {
	case old == nil:
		r.cur.Store(&view{round: w.Round, sc: w.Schedule, kicks: w.Kicks})
		r.settle()
	case !old.same(w):
		r.mu.Lock()
		r.cur.Store(&view{round: w.Round, sc: w.Schedule, kicks: w.Kicks})
		r.draining = append(r.draining, old)
		if len(r.draining) == 1 {
			go r.drain()
		}
		r.mu.Unlock()
	}
	r.deadline.Store(sent + int64(r.Lease-r.Margin))
	return nil
}

// drain waits until every replaced view's taps are answered, then records
// the current view as seen.
func (r *RoundView) drain() {
	for {
		r.mu.Lock()
		for len(r.draining) > 0 && r.draining[0].inflight.Load() == 0 {
			r.draining = r.draining[1:]
		}
		done := len(r.draining) == 0
		if done {
			r.settle()
		}
		r.mu.Unlock()
		if done {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle records the current view as seen and has the next heartbeat
// tell Redis at once.
func (r *RoundView) settle() {
	seen := r.cur.Load().seen()
	r.seen.Store(&seen)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
