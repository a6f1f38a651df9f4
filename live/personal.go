package live

// Personal updates (a player's own taps and rank) and presence heartbeats
// for the players connected here.

import (
	"context"
	"time"

	"github.com/tapwars/tapwars/game"
)

// refreshStats gives each connected player their taps and rank when they
// changed since the last time, and returns the clients that got them (to
// be woken to write them).
func (h *Hub) refreshStats(ctx context.Context) ([]*Client, error) {
	h.mu.Lock()
	byUser := map[string][]*Client{}
	for c := range h.clients {
		if c.user != nil && c.format.Page.HTML() {
			byUser[c.user.ID] = append(byUser[c.user.ID], c)
		}
	}
	h.mu.Unlock()
	if len(byUser) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(byUser))
	for id := range byUser {
		ids = append(ids, id)
	}
	readAt := time.Now()
	stats, err := h.src.Stats(ctx, ids)
	if err != nil {
		return nil, err
	}
	var got []*Client
	for id, cs := range byUser {
		st := stats[id]
		h.mu.Lock()
		old, ok := h.sent[id]
		h.sent[id] = st
		h.mu.Unlock()
		if ok && old == st {
			continue
		}
		for _, c := range cs {
			if b, err := Personal(st, c.format); err == nil && b != nil {
				c.personal.Store(&personalUpdate{readAt: readAt, msg: b})
				got = append(got, c)
			}
		}
	}
	return got, nil
}

func (h *Hub) touchAll(ctx context.Context) {
	h.mu.Lock()
	seen := map[string]bool{}
	var users []game.User
	for c := range h.clients {
		if c.user != nil && !seen[c.user.ID] {
			seen[c.user.ID] = true
			users = append(users, *c.user)
		}
	}
	h.mu.Unlock()
	if err := h.src.Touch(ctx, time.Now(), users...); err != nil {
		h.log.Warn("presence heartbeat", "err", err)
	}
}
