package handlers

import (
	"context"
	"errors"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/ledger"
)

// RoundView is this instance's view of the current round, which taps are
// judged by without reading Redis (ledger.RoundView).
type RoundView interface {
	Hold() (ledger.RoundHold, error)
	// OnKicks sets what reloads the kicked players when a kick is
	// announced, before taps are judged by the new view.
	OnKicks(reload func(context.Context) error)
}

// holdRound is the round a tap arriving now is judged by, held until it is
// answered (RoundHold.Done). Without a view (tests of the handlers alone)
// it is the live hub's last frame.
func (s *Server) holdRound() (ledger.RoundHold, error) {
	if s.opt.RoundView != nil {
		return s.opt.RoundView.Hold()
	}
	if s.hub != nil {
		if f := s.hub.Latest(); f != nil {
			return ledger.RoundHold{Schedule: f.Snapshot.Schedule, Round: f.Snapshot.GameState.Round}, nil
		}
	}
	return ledger.RoundHold{}, nil
}

// errMayStillCount answers a tap Kafka acknowledged after this instance's
// view of the round could last be confirmed: a new round may have started
// before it was written, so it may or may not count in the round it was
// judged by.
var errMayStillCount = game.Errorf(game.EPENDING, "no confirmation of the round in time: this tap may still count")

// heldPending is a tap answered "may still count" (stream.Pending) whose
// later acknowledgement counts only if the round it was judged by is still
// the current one then.
type heldPending struct {
	error
	hold ledger.RoundHold
}

func (p heldPending) Unwrap() error { return p.error }

// Wait is stream.Pending's Wait, refused as "may still count" when the
// round changed meanwhile.
func (p heldPending) Wait(ctx context.Context) error {
	var inner interface{ Wait(context.Context) error }
	if !errors.As(p.error, &inner) {
		return p.error
	}
	if err := inner.Wait(ctx); err != nil {
		return err
	}
	if !p.hold.Current() {
		return errMayStillCount
	}
	return nil
}

// roundRule refuses a tap stamped at now (unix ms) outside a timed round's
// play: the consumer counts a timed round's taps by the same rule
// (game.RoundSchedule.Counts), so a tap counts exactly when it is accepted.
// A timed round announced and not started yet refuses every tap (see
// ledger.RoundView).
func roundRule(h ledger.RoundHold, now int64) error {
	sc := h.Schedule
	secs := func(ms int64) int64 { return max(1, (ms+999)/1000) }
	if sc.Timed() && sc.Number > h.Round && now >= sc.StartsAt {
		e := game.Errorf(game.ECONFLICT, "the round is starting; try again in a moment")
		e.RetryAfter = 1
		return e
	}
	if sc.Counts(now) {
		return nil
	}
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
