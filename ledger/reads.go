package ledger

// Reads go straight to the projection: only changes go through the log.
// These are the reads the handlers make through the Game (handlers.Store,
// handlers.AdminStore and the schedule and history they look for).

import (
	"context"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

func (g *Game) Snapshot(ctx context.Context, top int, now time.Time) (game.Snapshot, error) {
	return g.st.Snapshot(ctx, top, now)
}

func (g *Game) Stats(ctx context.Context, ids []string) (map[string]game.PlayerStats, error) {
	return g.st.Stats(ctx, ids)
}

func (g *Game) Teams(ctx context.Context) (game.Teams, error) { return g.st.Teams(ctx) }

func (g *Game) Ping(ctx context.Context) error { return g.st.Ping(ctx) }

func (g *Game) RoundResults(ctx context.Context, offset, limit int64) ([]game.RoundResult, int64, error) {
	return g.st.RoundResults(ctx, offset, limit)
}

func (g *Game) Overview(ctx context.Context, topic string, now time.Time, window time.Duration) (store.Overview, error) {
	return g.st.Overview(ctx, topic, now, window)
}

func (g *Game) Export(ctx context.Context, now time.Time) (store.Export, error) {
	return g.st.Export(ctx, now)
}

func (g *Game) SubscribeAdmin(ctx context.Context) <-chan struct{} { return g.st.SubscribeAdmin(ctx) }

// Admin sessions are not game facts: they live in the store only.

func (g *Game) StartAdminSession(ctx context.Context, id string, expires time.Time) error {
	return g.st.StartAdminSession(ctx, id, expires)
}

func (g *Game) AdminSessionLive(ctx context.Context, id string) (bool, error) {
	return g.st.AdminSessionLive(ctx, id)
}

func (g *Game) EndAdminSession(ctx context.Context, id string) error {
	return g.st.EndAdminSession(ctx, id)
}
