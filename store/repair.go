package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrInconsistent is Consistent's answer when keys of the projection were
// deleted under it (the old game's "clear all game state", DEL game:users
// and the scores): players on the leaderboard are gone from game:users.
var ErrInconsistent = fmt.Errorf("the store's game keys were deleted under it (game:users is gone while game:leaderboard holds players)")

// Consistent reports false when game:users is gone while the leaderboard
// holds players (a kick removes a player from both; nothing else removes
// either), or while players tap (unknownTaps: a batch just met taps of
// players the store does not know, and it knows none).
func (s *Store) Consistent(ctx context.Context, unknownTaps bool) (bool, error) {
	var users *redis.IntCmd
	var board, prev *redis.IntCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		users = p.Exists(ctx, KeyUsers)
		board = p.ZCard(ctx, KeyLeaderboard)
		prev = p.ZCard(ctx, KeyLeaderboardPrev)
		return nil
	}); err != nil {
		return false, err
	}
	return users.Val() > 0 || (!unknownTaps && board.Val()+prev.Val() == 0), nil
}

// DropProjection deletes every key a replay of the log builds, offsets
// included, in one step, so the consumers rebuild it from the log (as
// after FLUSHALL). Presence and pending kicks are kept: the log does not
// hold them.
func (s *Store) DropProjection(ctx context.Context) error {
	keys := projectionKeyNames()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keys...)
		p.Publish(ctx, ChannelUpdates, "1")
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop the projection: %w", err)
	}
	return nil
}
