package handlers

import (
	"context"

	"github.com/tapwars/tapwars/game"
)

// scheduleReader reads the current round's schedule (store.Store).
type scheduleReader interface {
	RoundSchedule(ctx context.Context) (*game.RoundSchedule, error)
}

// currentSchedule is the round as this instance knows it: the live hub's
// last frame, or the store before the hub has one. nil is open play.
func (s *Server) currentSchedule(ctx context.Context) (*game.RoundSchedule, int64, error) {
	if s.hub != nil {
		if f := s.hub.Latest(); f != nil {
			return f.Snapshot.Schedule, f.Snapshot.GameState.Round, nil
		}
	}
	if r, ok := s.store.(scheduleReader); ok {
		sc, err := r.RoundSchedule(ctx)
		if err != nil {
			return nil, 0, game.Wrap(err, game.EUNAVAILABLE, "the round cannot be read; try again")
		}
		if sc != nil {
			return sc, sc.Number, nil
		}
	}
	return nil, 0, nil
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
