package ledger

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Growing game-taps: a partition added by an operator holds no round
// marker, so the projection would take its taps for round 0 and skip them
// as an old round. MarkPartitions logs the current round's marker on every
// partition added since the last call, then lets new players be pinned to
// them (game.PinnedID); players without a pinned partition stay hashed over
// the partitions the topic had when tapwars first saw it. Round markers are
// written under one lock (store.LockMarkers), so a round started while a
// partition is added reaches it either way.

// MarkPartitions marks new partitions of game-taps (see above) and reports
// which it marked ([from, to), empty when none). It does nothing while the
// projection is incomplete: its round may be behind the log's.
func (g *Game) MarkPartitions(ctx context.Context, now time.Time) (from, to int32, err error) {
	if complete, err := g.complete(ctx); err != nil || !complete {
		return 0, 0, err
	}
	n, err := g.facts.Partitions()
	if err != nil {
		return 0, 0, err
	}
	base, marked, err := g.st.Partitions(ctx)
	if err != nil {
		return 0, 0, err
	}
	if base > 0 && marked >= n {
		g.facts.SetKeyPartitions(base)
		return 0, 0, nil
	}
	unlock, err := g.st.LockMarkers(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	if base, marked, err = g.st.Partitions(ctx); err != nil {
		return 0, 0, err
	}
	if base == 0 {
		base = n
	}
	from, to = marked, marked
	if marked < n {
		f, ok, err := g.currentMarker(ctx, now)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			if err := g.facts.Mark(ctx, f, marked, n); err != nil {
				return 0, 0, err
			}
		}
		to = n
	}
	if err := g.st.SetPartitions(ctx, base, to); err != nil {
		return 0, 0, err
	}
	g.facts.SetKeyPartitions(base)
	return from, to, nil
}

// currentMarker is the marker that starts the projection's current round:
// an import's, a timed round's with its schedule, or an open round's; ok is
// false in round 0, which needs none.
func (g *Game) currentMarker(ctx context.Context, now time.Time) (f game.Fact, ok bool, err error) {
	round, err := g.st.Round(ctx)
	if err != nil || round == 0 {
		return f, false, err
	}
	imp, err := g.st.ImportRound(ctx)
	if err != nil {
		return f, false, err
	}
	if imp == round {
		return game.Fact{Type: game.FactImport, Round: round, At: now.UnixMilli()}, true, nil
	}
	f = game.Fact{Type: game.FactRound, Round: round, At: now.UnixMilli()}
	sc, err := g.st.RoundSchedule(ctx)
	if err != nil {
		return f, false, err
	}
	if sc.Timed() && sc.Number == round {
		f.Schedule = sc
	}
	return f, true, nil
}

// joinPartition is the partition a new player is pinned to: one of the
// marked partitions, at random; -1 (hashed by id) before any were marked.
func (g *Game) joinPartition(ctx context.Context) (int32, error) {
	_, marked, err := g.st.Partitions(ctx)
	if err != nil || marked <= 0 {
		return -1, err
	}
	return rand.Int32N(marked), nil
}

// withMarkers runs f, which logs round markers, under the markers' lock.
func (g *Game) withMarkers(ctx context.Context, f func() error) error {
	unlock, err := g.st.LockMarkers(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}
