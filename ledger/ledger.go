// Package ledger makes every change of the game a fact in the Kafka log
// before it is answered: joins, kicks, new rounds and imports are logged
// (acks=all) first, and the Redis projection follows from the log. Its Game
// offers the handlers every change they make (logged first) and the reads
// they need (reads.go, straight from the store), so the handlers do not
// know whether a change went through the log.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// Game is the game state with its changes logged first.
type Game struct {
	st    *store.Store // the projection
	facts *stream.Facts
	// Wait bounds how long an import waits for the consumer to apply it
	// before answering store.ErrNotApplied (default 3 s); KickWait the same
	// for a kick, which is in force at once anyway (default 2 s).
	Wait, KickWait time.Duration
	// ViewWait bounds how long a timed round's announcement waits for the
	// instances to switch to it (round_view.go): longer than a view's
	// lease and a tap's wait for Kafka together.
	ViewWait time.Duration
	// Rebuilding, when set, reports that the projection is being rebuilt
	// from the log: a reset or an import then waits, as the round it
	// would choose comes from a projection that is not complete.
	Rebuilding func() bool

	kickedMu sync.Mutex
	kicked   []string // the kicked ids of the last complete read (kicked.go)
}

// errRebuilding refuses a reset or an import during a rebuild.
var errRebuilding = fmt.Errorf("%w: the game state is being rebuilt from the log; try again when /readyz says ready", game.ErrUnavailable)

func (g *Game) rebuilding() bool { return g.Rebuilding != nil && g.Rebuilding() }

// complete reports whether the projection holds the whole log so far: it
// has its offsets (an empty or wiped Redis has none) and is not rebuilt.
func (g *Game) complete(ctx context.Context) (bool, error) {
	has, err := g.st.HasOffsets(ctx)
	return has && !g.rebuilding(), err
}

// User reads a player. One the projection does not know while it is
// incomplete may be in the log all the same: game.ErrNotReplayed says so,
// and a signed v2 token is then proof of the join.
func (g *Game) User(ctx context.Context, id string) (game.User, error) {
	u, err := g.st.User(ctx, id)
	if !errors.Is(err, game.ErrUnknownPlayer) {
		return u, err
	}
	switch complete, cerr := g.complete(ctx); {
	case cerr != nil:
		return game.User{}, cerr
	case !complete:
		return game.User{}, game.ErrNotReplayed
	}
	return game.User{}, err
}

// New returns the logged game over st.
func New(st *store.Store, facts *stream.Facts) *Game {
	return &Game{st: st, facts: facts, Wait: 3 * time.Second, KickWait: 2 * time.Second, ViewWait: DefaultRoundLease + 5*time.Second}
}

// Join chooses the player's team atomically in Redis (balanced among the
// players online, across instances), then logs the join with that team,
// id, name and session. A join Kafka did not acknowledge is undone, and the
// caller answers 503.
func (g *Game) Join(ctx context.Context, name string, now time.Time) (game.User, error) {
	p, err := g.joinPartition(ctx)
	if err != nil {
		return game.User{}, err
	}
	u, err := g.st.JoinOn(ctx, name, now, p)
	if err != nil {
		return game.User{}, err
	}
	if err := g.facts.Join(ctx, u); err != nil {
		if ferr := g.st.Forget(context.WithoutCancel(ctx), u); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return game.User{}, fmt.Errorf("%w: %w", game.ErrUnavailable, err)
	}
	return u, nil
}

// StartOpenRound logs open round current+1 on every partition, then starts it in the
// projection at once (the consumer applying the markers later changes
// nothing more): a round starts at its markers.
func (g *Game) StartOpenRound(ctx context.Context, now time.Time) (res store.ResetResult, err error) {
	if g.rebuilding() {
		return store.ResetResult{}, errRebuilding
	}
	err = g.withMarkers(ctx, func() error {
		cur, err := g.st.Round(ctx)
		if err != nil {
			return err
		}
		round, err := game.NextRound(cur)
		if err != nil {
			return err
		}
		if err := g.facts.Round(ctx, round, now); err != nil {
			return err
		}
		res, err = g.st.Reset(ctx, round, now)
		return err
	})
	if err == nil {
		g.showStarted(ctx, res.Round)
	}
	return res, err
}

// Kick logs a player's kick and waits until the consumer applied it, to
// answer with the taps it removed.
func (g *Game) Kick(ctx context.Context, id string, now time.Time) (int64, error) {
	if _, err := g.st.User(ctx, id); errors.Is(err, game.ErrUnknownPlayer) {
		if _, kicked, kerr := g.st.Kicked(ctx, id); kerr == nil && kicked {
			return 0, store.ErrAlreadyKicked
		}
		return 0, err
	} else if err != nil {
		return 0, err
	}
	// Refused on every instance before it is logged (round_view.go): no
	// tap of the player is answered 2xx and logged after the kick, where
	// the consumer would skip it.
	epoch, err := g.st.PendKick(ctx, id, now)
	if err != nil {
		return 0, err
	}
	err = g.awaitViews(ctx, store.Seen{Kicks: epoch})
	if err == nil {
		err = g.facts.Kick(ctx, id, now)
	}
	if err != nil {
		if uerr := g.st.UnpendKick(context.WithoutCancel(ctx), id); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return 0, err
	}
	var removed int64
	err = g.wait(ctx, g.KickWait, func(ctx context.Context) (bool, error) {
		rec, ok, err := g.st.Kicked(ctx, id)
		removed = rec.RemovedTaps
		return ok, err
	})
	return removed, err
}

// Import logs an import (markers, then its players and kicked players) and
// waits until the consumer applied it. The round becomes max(current + 1,
// the file's round), which starts at its markers like StartOpenRound's. topic names
// the tap log in the projection's overview.
func (g *Game) Import(ctx context.Context, ex store.Export, topic string, now time.Time) (int64, error) {
	if g.rebuilding() {
		return 0, errRebuilding
	}
	var round int64
	err := g.withMarkers(ctx, func() error {
		cur, err := g.st.Round(ctx)
		if err != nil {
			return err
		}
		next, err := game.NextRound(cur)
		if err != nil {
			return err
		}
		round = max(next, ex.Round)
		kicked := make([]game.Fact, len(ex.Kicked))
		for i, k := range ex.Kicked {
			u := k.User
			kicked[i] = game.Fact{Type: game.FactKicked, User: &u, At: k.KickedAt, RemovedTaps: k.RemovedTaps}
		}
		if err := g.facts.Import(ctx, round, now, ex.Players, kicked); err != nil {
			return err
		}
		// Held until the projection reached the import's round: a partition
		// marked meanwhile (partitions.go) would get the round before it.
		_ = g.wait(ctx, g.Wait, func(ctx context.Context) (bool, error) {
			r, err := g.st.Round(ctx)
			return r >= round, err
		})
		return nil
	})
	if err != nil {
		return 0, err
	}
	// the history keeps the first result of a round: imported rounds fill
	// gaps and never change a final result
	if err := g.facts.Results(ctx, ex.Rounds); err != nil {
		return 0, err
	}
	err = g.wait(ctx, g.Wait, func(ctx context.Context) (bool, error) {
		ov, err := g.st.Overview(ctx, topic, time.Now(), time.Second)
		if err != nil {
			return false, err
		}
		return ov.Round >= round && ov.Players >= int64(len(ex.Players)) && ov.Kicked >= int64(len(ex.Kicked)), nil
	})
	if err == nil {
		g.showStarted(ctx, round)
	}
	return round, err
}

// wait polls done until it reports true, limit passes or ctx ends.
func (g *Game) wait(ctx context.Context, limit time.Duration, done func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := done(ctx)
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return store.ErrNotApplied
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartTimedRound logs timed round current+1 with sc's durations on every
// partition, then starts it in the projection at once. sc.Number is filled
// in; its times must be absolute (unix ms).
func (g *Game) StartTimedRound(ctx context.Context, sc game.RoundSchedule, now time.Time) (started game.RoundSchedule, err error) {
	if g.rebuilding() {
		return game.RoundSchedule{}, errRebuilding
	}
	err = g.withMarkers(ctx, func() error {
		started, err = g.startTimedRound(ctx, sc, now)
		return err
	})
	return started, err
}

func (g *Game) startTimedRound(ctx context.Context, sc game.RoundSchedule, now time.Time) (game.RoundSchedule, error) {
	cur, err := g.st.Round(ctx)
	if err != nil {
		return game.RoundSchedule{}, err
	}
	if sc.Number, err = game.NextRound(cur); err != nil {
		return game.RoundSchedule{}, err
	}
	sc.Mode = game.ModeTimed
	if err := g.announce(ctx, sc, now); err != nil {
		return game.RoundSchedule{}, err
	}
	if _, err := g.st.StartRound(ctx, sc, now); err != nil {
		return game.RoundSchedule{}, err
	}
	g.showStarted(ctx, sc.Number)
	return sc, nil
}

// showStarted waits (at most ViewWait) until every instance judges taps by
// round n, started: from the answer on, a tap on any instance is judged by
// it. An instance slower than that only refuses taps a moment longer.
func (g *Game) showStarted(ctx context.Context, n int64) {
	_ = g.awaitViews(ctx, store.Seen{Stamp: Started(n)})
}

// announce announces timed round sc, waits until every instance switched
// to it (round_view.go) and logs its markers; a round that could not be
// logged is withdrawn.
func (g *Game) announce(ctx context.Context, sc game.RoundSchedule, now time.Time) error {
	if err := g.st.AnnounceRound(ctx, sc); err != nil {
		return err
	}
	err := g.awaitViews(ctx, store.Seen{Stamp: Announced(sc.Number)})
	if err == nil {
		err = g.facts.TimedRound(ctx, sc, now)
	}
	if err != nil {
		if werr := g.st.WithdrawRound(context.WithoutCancel(ctx), sc); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

// awaitViews waits until every registered instance has switched to a view
// at least as new as seen (round_view.go; store.RoundUnseen), at most
// ViewWait.
func (g *Game) awaitViews(ctx context.Context, seen store.Seen) error {
	deadline := time.Now().Add(g.ViewWait)
	for {
		behind, err := g.st.RoundUnseen(ctx, seen)
		switch {
		case err != nil:
			return err
		case len(behind) == 0:
			return nil
		case time.Now().After(deadline):
			what := fmt.Sprintf("round %d was not started", seen.Stamp/2)
			if seen.Kicks > 0 {
				what = "the player was not removed"
			}
			return game.Errorf(game.EUNAVAILABLE, "%s: %d instance(s) did not confirm it within %v (%s); try again", what, len(behind), g.ViewWait, strings.Join(behind, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// StartNextRound logs the next round of a repeating schedule (sc.Next());
// the caller checks that sc is still the current round. Its markers depend
// on sc alone, so two instances writing them at once write the same round.
func (g *Game) StartNextRound(ctx context.Context, sc game.RoundSchedule, now time.Time) error {
	return g.withMarkers(ctx, func() error { return g.startNextRound(ctx, sc, now) })
}

func (g *Game) startNextRound(ctx context.Context, sc game.RoundSchedule, now time.Time) error {
	if _, err := game.NextRound(sc.Number); err != nil {
		return err
	}
	next := sc.Next()
	if err := g.announce(ctx, next, now); err != nil {
		return err
	}
	_, err := g.st.StartRound(ctx, next, now)
	if err == nil {
		g.showStarted(ctx, next.Number)
	}
	return err
}

// LogResult logs a timed round's final result.
func (g *Game) LogResult(ctx context.Context, res game.RoundResult) error {
	return g.facts.Result(ctx, res)
}

// SetTeams logs how the teams are shown from now on (names and colours,
// already normalised: game.NormalizeTeams) and waits, like a kick, until
// the consumer applied it: store.ErrNotApplied if that takes longer than
// KickWait (the change is in the log, and every page shows it soon).
func (g *Game) SetTeams(ctx context.Context, ts game.Teams, now time.Time) error {
	if err := g.facts.Teams(ctx, ts, now); err != nil {
		return err
	}
	return g.wait(ctx, g.KickWait, func(ctx context.Context) (bool, error) {
		cur, err := g.st.Teams(ctx)
		return cur == ts, err
	})
}
