package handlers

import (
	"context"
	"time"

	"github.com/tapwars/tapwars/game"
)

// scheduleReader reads the current round's schedule (ledger.Game, from the store).
type scheduleReader interface {
	CurrentRound(ctx context.Context) (*game.RoundSchedule, int64, error)
}

// knownRound is the round as this instance last read it from the store.
type knownRound struct {
	sc     *game.RoundSchedule
	round  int64
	failed time.Time // when reading it failed last (zero: the last read worked)
}

// roundRetry is how long taps use the round last read after the store
// failed to answer, before reading it again.
const roundRetry = 500 * time.Millisecond

// currentSchedule is the current round's schedule (nil: open play) and
// number, read from the store for every tap (reads that start after the
// tap arrived are shared, see roundReads): a timed round is announced in
// the store before its markers are logged, so from the moment the operator's
// request returns no instance accepts a tap for the countdown; a cached
// copy could still say open play. While the store cannot be read, taps are
// still accepted (Kafka is the record) under the round last read: no round
// can be announced meanwhile, and the bell is in the schedule. Without a
// schedule reader (tests of the handlers alone) it is the live hub's last
// frame.
func (s *Server) currentSchedule(ctx context.Context) (*game.RoundSchedule, int64, error) {
	if s.roundReads == nil {
		sc, round, _ := s.frameRound()
		return sc, round, nil
	}
	k := s.lastRound.Load()
	if k != nil && time.Since(k.failed) < roundRetry {
		// Redis failed a moment ago: do not make every tap dial it
		return k.sc, k.round, nil
	}
	sc, round, err := s.roundReads.get(ctx)
	if err == nil {
		// Taps share reads: store (one allocation) only what changed.
		if k == nil || !sameSchedule(k.sc, sc) || k.round != round || !k.failed.IsZero() {
			s.lastRound.Store(&knownRound{sc: sc, round: round})
		}
		return sc, round, nil
	}
	if k != nil {
		s.lastRound.Store(&knownRound{sc: k.sc, round: k.round, failed: time.Now()})
		return k.sc, k.round, nil
	}
	if sc, round, ok := s.frameRound(); ok {
		return sc, round, nil
	}
	return nil, 0, game.Wrap(err, game.EUNAVAILABLE, "the round cannot be read; try again")
}

// frameRound is the round of the live hub's last frame (ok: there is one).
func (s *Server) frameRound() (sc *game.RoundSchedule, round int64, ok bool) {
	if s.hub == nil {
		return nil, 0, false
	}
	f := s.hub.Latest()
	if f == nil {
		return nil, 0, false
	}
	return f.Snapshot.Schedule, f.Snapshot.GameState.Round, true
}

// sameSchedule reports whether a and b are the same schedule (each read
// decodes a new one).
func sameSchedule(a, b *game.RoundSchedule) bool {
	return a == b || a != nil && b != nil && *a == *b
}

// roundRule refuses a tap stamped at now (unix ms) outside a timed round's
// play: the consumer counts a timed round's taps by the same rule
// (game.RoundSchedule.Counts), so a tap counts exactly when it is accepted.
func roundRule(sc *game.RoundSchedule, now int64) error {
	if sc.Counts(now) {
		return nil
	}
	secs := func(ms int64) int64 { return max(1, (ms+999)/1000) }
	if now < sc.StartsAt {
		e := game.Errorf(game.ECONFLICT, "the round has not started yet; it starts in %d s", secs(sc.StartsAt-now))
		e.RetryAfter = int(secs(sc.StartsAt - now))
		return e
	}
	if sc.Repeat {
		next := sc.Next().StartsAt
		e := game.Errorf(game.ECONFLICT, "the round is over; the next one starts in %d s", secs(next-now))
		e.RetryAfter = int(secs(next - now))
		return e
	}
	return game.Errorf(game.ECONFLICT, "the round is over; the next one starts when the host starts it")
}
