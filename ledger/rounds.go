package ledger

import (
	"context"
	"log/slog"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/stream"
)

// RoundKeeper does the work of timed rounds that no request does: once a
// round's bell has rung and every tap stamped before it is in the log and
// applied, it logs the round's result; with repeat, it logs the next round
// when its countdown is due; and it tells the live pages when a round's
// status changes. Every instance runs one: what they log depends on the
// log alone (the schedule and the applied state), so two instances log the
// same result and the same next round, and the first in the log stays. A
// restarted instance picks the round up from the projection, so a round
// ends at its planned time whatever restarts.
type RoundKeeper struct {
	g *Game
	// Ends reads the high watermark of every partition of the tap log.
	Ends func(ctx context.Context) (map[int32]int64, error)
	// Settle is how long after the bell the last tap stamped before it can
	// still be on its way to Kafka: the tap timeout plus a margin.
	Settle time.Duration
	Log    *slog.Logger
	// Pending, when set, is how many of this instance's taps were answered
	// 504 (they may still count) and are still on their way to Kafka: the
	// result waits for them, at most stream.PendingWait after Settle.
	Pending func() int

	ends       map[int32]int64 // watermarks read after the bell of endsRound
	endsRound  int64
	lastStatus game.RoundStatus
	lastRound  int64
}

// NewRoundKeeper returns the keeper of g's timed rounds.
func NewRoundKeeper(g *Game, ends func(context.Context) (map[int32]int64, error), settle time.Duration, log *slog.Logger) *RoundKeeper {
	return &RoundKeeper{g: g, Ends: ends, Settle: settle, Log: log}
}

// Run checks the round every tick until ctx ends.
func (k *RoundKeeper) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	// After an error (Redis or Kafka down) it retries every second and
	// says so once, not every tick.
	var (
		failing bool
		retryAt time.Time
		markAt  time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			if now.After(markAt) {
				k.markPartitions(ctx, now)
				markAt = now.Add(MarkEvery)
			}
			if now.Before(retryAt) {
				continue
			}
			err := k.Step(ctx, now)
			switch {
			case err != nil && ctx.Err() == nil:
				if !failing {
					k.Log.Warn("timed rounds: will retry every second", "err", err)
				}
				failing, retryAt = true, now.Add(time.Second)
			case err == nil && failing:
				k.Log.Info("timed rounds: working again")
				failing = false
			}
		}
	}
}

// MarkEvery is how often the keeper looks for partitions added to game-taps.
const MarkEvery = 2 * time.Second

// markPartitions gives partitions added to game-taps the current round's
// marker (Game.MarkPartitions).
func (k *RoundKeeper) markPartitions(ctx context.Context, now time.Time) {
	from, to, err := k.g.MarkPartitions(ctx, now)
	switch {
	case err != nil && ctx.Err() == nil:
		k.Log.Warn("kafka: could not check game-taps for new partitions; will retry", "err", err)
	case to > from:
		k.Log.Info("kafka: new partitions of game-taps carry the current round's marker; new players go to them too", "from", from, "to", to)
	}
}

// Step does what is due at now.
func (k *RoundKeeper) Step(ctx context.Context, now time.Time) error {
	if k.g.rebuilding() {
		return nil // the projection is not complete: nothing in it is final
	}
	sc, err := k.g.st.RoundSchedule(ctx)
	if err != nil || !sc.Timed() {
		return err
	}
	ms := now.UnixMilli()
	if st := sc.Status(ms); st != k.lastStatus || sc.Number != k.lastRound {
		// Pages count down by themselves; the streams' JSON says the new
		// status.
		if err := k.g.st.Notify(ctx); err != nil {
			return err
		}
		k.lastStatus, k.lastRound = st, sc.Number
	}
	if ms < sc.EndsAt+k.Settle.Milliseconds() {
		return nil
	}
	res, err := k.g.st.RoundResult(ctx, sc.Number)
	if err != nil {
		return err
	}
	if res == nil {
		if k.Pending != nil && k.Pending() > 0 && ms < sc.EndsAt+(k.Settle+stream.PendingWait).Milliseconds() {
			return nil // taps answered "may still count" are not settled yet
		}
		return k.finish(ctx, *sc)
	}
	if sc.Repeat && ms >= sc.Next().CountdownAt {
		k.Log.Info("timed rounds: next round", "round", sc.Number+1)
		return k.g.StartNextRound(ctx, *sc, now)
	}
	return nil
}

// finish logs sc's result once every record that was in the log Settle
// after the bell has been applied: every tap stamped before the bell was
// acknowledged or refused by then, so the scores are final.
func (k *RoundKeeper) finish(ctx context.Context, sc game.RoundSchedule) error {
	if k.endsRound != sc.Number {
		ends, err := k.Ends(ctx)
		if err != nil {
			return err
		}
		k.ends, k.endsRound = ends, sc.Number
	}
	parts := make([]int32, 0, len(k.ends))
	for p := range k.ends {
		parts = append(parts, p)
	}
	applied, err := k.g.st.Offsets(ctx, stream.Topic, parts)
	if err != nil {
		return err
	}
	for p, end := range k.ends {
		if applied[p] < end {
			return nil // not final yet
		}
	}
	res, err := k.g.st.Tally(ctx)
	if err != nil || res.Round != sc.Number {
		return err // a newer round started: this one is abandoned
	}
	res.StartsAt, res.EndsAt = sc.StartsAt, sc.EndsAt
	k.Log.Info("timed rounds: result", "round", res.Round, "blue", res.Blue, "red", res.Red, "winner", res.Winner)
	return k.g.LogResult(ctx, res)
}
