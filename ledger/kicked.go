package ledger

import (
	"context"
	"slices"
)

// KickedIDs returns the ids of every kicked player. A projection that lost
// everything (a wiped or restarted Redis) gets its kicked players back only
// as the log is replayed, yet no player is un-kicked meanwhile: only an
// import changes the set otherwise, and applying one gives the projection
// its offsets. So while the projection holds no offsets or is rebuilt, the
// ids of the last complete read count too: a kicked player is never let
// through with 202 for taps the replay would skip.
func (g *Game) KickedIDs(ctx context.Context) ([]string, error) {
	ids, err := g.st.KickedIDs(ctx)
	if err != nil {
		return nil, err
	}
	complete, err := g.complete(ctx)
	if err != nil {
		return nil, err
	}
	g.kickedMu.Lock()
	defer g.kickedMu.Unlock()
	if complete {
		g.kicked = slices.Clone(ids)
		return ids, nil
	}
	have := make(map[string]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	for _, id := range g.kicked {
		if !have[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
